-- A statement that waits for incidents' turns (wait_for_incident) must take its transaction id
-- only after it waited, and read those incidents as the transactions it waited for left them.
-- Two things in one statement got in the way: pg_current_xact_id() is STABLE, so the planner
-- called it while planning, to estimate the feed's position ranges, which gave the transaction
-- its id before it waited; and the statement's snapshot, taken before it waited, holds none of
-- what it waited for. Both are functions here that run only when the executor calls them.
-- depends: 20261202_22_alert_intake

-- Events write their timestamps as JSON writes a timestamptz (sql/events.sql), not with this.
DROP FUNCTION rfc3339(timestamptz);

-- The first feed position of this transaction (see publish_events); VOLATILE plpgsql, which the
-- planner neither inlines nor evaluates ahead.
CREATE FUNCTION transaction_feed_base() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN pg_current_xact_id()::text::bigint * 1048576;
END $$;

-- An incident as incident_details shows it, read with a snapshot of its own (a VOLATILE
-- function's query takes a new one in READ COMMITTED): after its turn, it holds the change of
-- the transaction that had the turn before.
CREATE FUNCTION incident_now(incident_id bigint) RETURNS SETOF incident_details
LANGUAGE sql VOLATILE AS $$
    SELECT * FROM incident_details WHERE id = incident_id
$$;
