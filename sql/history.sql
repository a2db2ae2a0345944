-- Incident history: one entry per request that changed an incident.

-- name: list_history :many
SELECT id, incident_id, actor_id, action, changes, created_at
FROM incident_history
WHERE incident_id = %(incident_id)s AND id > %(after_id)s
ORDER BY id
LIMIT %(limit)s

-- name: record_event :exec
-- One history entry and its notifications, in one statement (PERF: one round trip per write).
-- One notification per recipient: the direct event (assigned, resolved) wins over the follow
-- event; the actor is never notified of their own action.
WITH entry AS (
    INSERT INTO incident_history (incident_id, actor_id, action, changes)
    VALUES (%(incident_id)s, %(actor_id)s, %(action)s, %(changes)s)
)
INSERT INTO notifications (user_id, event, incident_id, actor_id)
SELECT DISTINCT ON (recipient) recipient, event, %(incident_id)s, %(actor_id)s
FROM (
    SELECT direct.recipient, direct.event, 0 AS rank
    FROM unnest(%(recipients)s::bigint[], %(events)s::text[]) AS direct(recipient, event)
    UNION ALL
    SELECT follower_id, %(follow_event)s, 1
    FROM follows
    WHERE followee_id = %(actor_id)s AND %(follow_event)s::text IS NOT NULL
) AS candidates
WHERE recipient <> %(actor_id)s
ORDER BY recipient, rank
