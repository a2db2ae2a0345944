-- A statement that waits for incidents' turns (wait_for_incident) must take its transaction id
-- only after it waited, and read those incidents as the transactions it waited for left them.
-- Two things in one statement got in the way: pg_current_xact_id() is STABLE, so the planner
-- called it while planning, to estimate the feed's position ranges, which gave the transaction
-- its id before it waited; and the statement's snapshot, taken before it waited, holds none of
-- what it waited for. Both are functions here that run only when the executor calls them.
-- depends: 20261202_22_alert_intake

-- rfc3339() was declared IMMUTABLE STRICT, which its body (to_char, date_part: STABLE; a CASE,
-- not strict) is not, so PostgreSQL could not inline it and ran it as a function call, about
-- 25 µs each, four per incident in every feed event: declared as what it is, it is inlined.
CREATE OR REPLACE FUNCTION rfc3339(t timestamptz) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC',
                   CASE WHEN date_part('microseconds', t)::bigint % 1000000 = 0
                        THEN 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'
                        ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"' END)
$$;

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
