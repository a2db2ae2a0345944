ALTER TABLE events ADD COLUMN data json;
UPDATE events SET data = CASE type
    WHEN 'comment.created' THEN json_build_object('incident', incident_json(incident), 'comment', comment)
    WHEN 'incident.deleted' THEN json_build_object('incident', incident_json(incident))
    ELSE json_build_object('incident', incident_json(incident), 'changes', changes) END;
ALTER TABLE events ALTER COLUMN data SET NOT NULL, DROP COLUMN incident, DROP COLUMN changes, DROP COLUMN comment;
DROP FUNCTION incident_json(incident_document);
DROP TYPE incident_document;

-- The first feed position of this transaction (see publish_events); VOLATILE plpgsql, which the
-- planner neither inlines nor evaluates ahead.
CREATE FUNCTION transaction_feed_base() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN pg_current_xact_id()::text::bigint * 1048576;
END $$;

ALTER TABLE events ALTER COLUMN position DROP DEFAULT;
DROP FUNCTION next_feed_position();
