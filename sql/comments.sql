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
INSERT INTO comments (incident_id, author_id, content)
VALUES (%(incident_id)s, %(author_id)s, %(content)s)
RETURNING id, incident_id, author_id, content, created_at
