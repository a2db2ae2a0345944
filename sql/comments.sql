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
-- After the incident's turn (see wait_for_incident in the change_feed migration), so that the
-- version its feed event shows follows the incident's changes in feed order.
INSERT INTO comments (incident_id, author_id, content)
SELECT %(incident_id)s, %(author_id)s, %(content)s
WHERE wait_for_incident(%(incident_id)s)
RETURNING id, incident_id, author_id, content, created_at
