-- Comments on incidents, oldest first.

-- name: get_comment :one
SELECT id, incident_id, author_id, content, created_at
FROM comments WHERE id = %(id)s AND incident_id = %(incident_id)s

-- name: list_comments :many
-- One page in (created_at, id) order, after the cursor position when there is one.
SELECT id, incident_id, author_id, content, created_at
FROM comments
WHERE incident_id = %(incident_id)s
  AND (created_at, id) > (%(after_created_at)s::timestamptz, %(after_id)s)
ORDER BY created_at, id
LIMIT %(limit)s

-- name: create_comment :one
-- The comment, when the incident exists, with its history entry and feed event; after the
-- incident's turn (see wait_for_incident in the change_feed migration), so that the version
-- its feed event shows follows the incident's changes in feed order (and read after the turn:
-- incident_now). PERF: one statement, one round trip, where checking the incident, inserting
-- and recording took three and a transaction.
WITH inserted AS (
    INSERT INTO comments (incident_id, author_id, content)
    SELECT %(incident_id)s, %(author_id)s, %(content)s
    WHERE EXISTS (SELECT FROM incidents WHERE id = %(incident_id)s) AND wait_for_incident(%(incident_id)s)
    RETURNING id, incident_id, author_id, content, created_at
), event AS (
    SELECT i.id AS incident_id, c.author_id AS actor_id, 'commented'::text AS action,
           jsonb_build_object('comment_id', jsonb_build_array(NULL, c.id)) AS changes,
           ARRAY[]::bigint[] AS recipients, ARRAY[]::text[] AS events, NULL::text AS follow_event,
           {:incident_document} AS incident, i.version AS incident_version, {:comment_document} AS comment
    FROM inserted c CROSS JOIN LATERAL incident_now(c.incident_id) i
),
{:event_records}
SELECT * FROM inserted
