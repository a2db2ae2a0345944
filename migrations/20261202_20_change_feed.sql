-- The change feed: every committed change to an incident is also an event, written in the
-- change's own transaction. An event's position is its transaction's id times 2^20 plus its
-- ordinal in the transaction, and readers return only events of transactions older than the
-- oldest one still running (pg_snapshot_xmin): those have all ended, and every later event
-- belongs to a younger transaction, so it gets a higher position than anything a reader has
-- seen. Writers wait for nothing (a sequence does not give this: a slower transaction can
-- commit a lower value after a reader passed it; a counter row locked until commit does, at
-- the price of serialising every commit's WAL flush: see docs/decisions.md).
--
-- Along the feed an incident's versions must follow each other, so the transactions that
-- change one incident must take their ids in the order they change it. A row lock does not
-- ensure that (PostgreSQL may assign the waiting transaction its id before it waits), so each
-- of them first waits for the incident's turn, an advisory lock taken before it writes
-- anything (wait_for_incident): the next one gets its id only after the previous committed.
-- depends: 20261202_19_retention

-- No foreign keys: an event outlives its incident (incident.deleted) and its actor.
CREATE TABLE events (
    position         bigint PRIMARY KEY,
    type             text NOT NULL,
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    actor_id         bigint NOT NULL,
    incident_id      bigint NOT NULL,
    incident_version integer NOT NULL,
    data             json NOT NULL
);
CREATE INDEX events_incident_id_idx ON events (incident_id, position);

-- How far the retention job has pruned the feed: a reader whose cursor is below this missed
-- events (410).
CREATE TABLE events_pruned (
    only_row boolean PRIMARY KEY DEFAULT true CONSTRAINT events_pruned_one_row CHECK (only_row),
    through_position bigint NOT NULL
);
INSERT INTO events_pruned (through_position) VALUES (0);

-- Waits until no other transaction holds the incident's turn, then holds it until this one
-- ends; true, to be called in a WHERE clause before the statement writes (and so before the
-- transaction has an id).
CREATE FUNCTION wait_for_incident(incident_id bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('incident', incident_id));
    RETURN true;
END $$;

-- A timestamp as the API writes it (RFC 3339 in UTC, microseconds only when there are any),
-- for the incident and comment an event carries.
CREATE FUNCTION rfc3339(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC',
                   CASE WHEN date_part('microseconds', t)::bigint % 1000000 = 0
                        THEN 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'
                        ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"' END)
$$;
