-- A slimmer feed event for writers. The incident an event shows is stored as a row of the
-- composite type incident_document (typed values, put together without a lookup per field)
-- instead of JSON, with the changes and the comment in columns of their own; readers build
-- the JSON (event_data in sql/events.sql). And an event's position (its transaction's id times
-- 2^20 plus its ordinal in the transaction) is the column's default, one call per event that
-- keeps the transaction's last position in a transaction-local setting, instead of a CTE that
-- called transaction_feed_base(), a probe of the primary key for the transaction's earlier
-- events and a window function. Building the JSON was a third of what the event cost
-- POST /incidents in the database, those plan nodes (with a category lookup) a quarter (see
-- docs/decisions.md).
-- depends: 20261202_23_feed_after_turns

-- The next feed position of this transaction: after its earlier events (of this statement or
-- an earlier one). VOLATILE plpgsql, which the planner neither inlines nor evaluates ahead, so
-- the transaction gets its id only when the executor writes its first event (after any turn
-- the statement waited for). The setting is set local: it ends with the transaction, and a
-- rolled-back savepoint takes back its events and the positions they took together.
CREATE FUNCTION next_feed_position() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    base bigint := pg_current_xact_id()::text::bigint * 1048576;
    last bigint := nullif(current_setting('feed.last_position', true), '')::bigint;
BEGIN
    IF last IS NULL OR last < base THEN
        last := base;
    ELSIF last >= base + 1048575 THEN
        RAISE EXCEPTION 'a transaction publishes at most 1048575 events';
    END IF;
    RETURN set_config('feed.last_position', (last + 1)::text, true)::bigint;
END $$;

-- PERF: a default, not a value of the INSERT's SELECT, where the volatile call kept the
-- planner from merging the SELECT into the INSERT (one plan node more per statement).
ALTER TABLE events ALTER COLUMN position SET DEFAULT next_feed_position();

DROP FUNCTION transaction_feed_base();

-- An incident as the API shows it (incident_details' columns but allowed_transitions, which
-- depends on the reader), as an event keeps it. NOTE: a field added to the API's incident is
-- added here too (ALTER TYPE ... ADD ATTRIBUTE: events written before show it as null) and to
-- incident_json.
CREATE TYPE incident_document AS (
    id              bigint,
    title           text,
    description     text,
    status          incident_status,
    severity        incident_severity,
    reporter_id     bigint,
    assignee_id     bigint,
    categories      json,
    created_at      timestamptz,
    updated_at      timestamptz,
    acknowledged_at timestamptz,
    resolved_at     timestamptz,
    resolution      text,
    version         integer,
    dedup_key       text,
    source          text
);

-- The incident document as the API writes it; inlined (a single SELECT, STABLE as rfc3339 is).
CREATE FUNCTION incident_json(i incident_document) RETURNS json LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object('id', i.id, 'title', i.title, 'description', i.description, 'status', i.status,
                             'severity', i.severity, 'reporter_id', i.reporter_id, 'assignee_id', i.assignee_id,
                             'categories', i.categories, 'created_at', rfc3339(i.created_at),
                             'updated_at', rfc3339(i.updated_at), 'acknowledged_at', rfc3339(i.acknowledged_at),
                             'resolved_at', rfc3339(i.resolved_at), 'resolution', i.resolution, 'version', i.version,
                             'dedup_key', i.dedup_key, 'source', i.source)
$$;

-- changes: what a change of the incident changed (no comment.created or incident.deleted
-- event has any); comment: a comment.created event's comment, as the API shows it.
ALTER TABLE events ADD COLUMN incident incident_document, ADD COLUMN changes jsonb, ADD COLUMN comment json;
UPDATE events SET incident = json_populate_record(NULL::incident_document, data -> 'incident'),
                  changes = (data -> 'changes')::jsonb,
                  comment = data -> 'comment';
ALTER TABLE events ALTER COLUMN incident SET NOT NULL, DROP COLUMN data;
