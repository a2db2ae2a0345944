DROP FUNCTION rfc3339(timestamptz);
DROP TABLE events;
DROP TABLE feed_head;
