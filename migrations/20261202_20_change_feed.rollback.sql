DROP FUNCTION rfc3339(timestamptz);
DROP FUNCTION wait_for_incident(bigint);
DROP TABLE events_pruned;
DROP TABLE events;
