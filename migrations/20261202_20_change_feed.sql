-- The change feed: every committed change to an incident is also an event, written in the
-- change's own transaction. feed_head is the one row every writing transaction updates to
-- take its positions: its row lock, held until commit, makes positions follow commit order
-- (a sequence would not: a slower transaction could commit a lower value after a reader had
-- passed it). See docs/decisions.md for the measured cost.
-- depends: 20261202_19_retention

CREATE TABLE feed_head (
    only_row      boolean PRIMARY KEY DEFAULT true CONSTRAINT feed_head_one_row CHECK (only_row),
    last_position bigint NOT NULL CONSTRAINT feed_head_position_not_negative CHECK (last_position >= 0)
);
INSERT INTO feed_head (last_position) VALUES (0);

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

-- A timestamp as the API writes it (RFC 3339 in UTC, microseconds only when there are any),
-- for the incident and comment an event carries.
CREATE FUNCTION rfc3339(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC',
                   CASE WHEN date_part('microseconds', t)::bigint % 1000000 = 0
                        THEN 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'
                        ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"' END)
$$;
