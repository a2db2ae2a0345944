-- The first feed position of this transaction (see publish_events); VOLATILE plpgsql, which the
-- planner neither inlines nor evaluates ahead.
CREATE FUNCTION transaction_feed_base() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN pg_current_xact_id()::text::bigint * 1048576;
END $$;

DROP FUNCTION next_feed_position();
