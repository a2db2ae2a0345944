-- Incident history: one entry per request that changed an incident.

-- name: list_history :many
SELECT id, incident_id, actor_id, action, changes, created_at
FROM incident_history
WHERE incident_id = %(incident_id)s AND id > %(after_id)s
ORDER BY id
LIMIT %(limit)s

-- name: add_history :exec
INSERT INTO incident_history (incident_id, actor_id, action, changes)
VALUES (%(incident_id)s, %(actor_id)s, %(action)s, %(changes)s)
