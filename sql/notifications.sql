-- Notifications, written in the transaction of the event that causes them.

-- name: list_notifications :many
-- The caller's, newest first.
SELECT id, event, incident_id, actor_id, read, created_at
FROM notifications
WHERE user_id = %(user_id)s AND (NOT %(unread)s OR NOT read) AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s)
ORDER BY id DESC
LIMIT %(limit)s

-- name: mark_notification_read :execrows
UPDATE notifications SET read = true WHERE id = %(id)s AND user_id = %(user_id)s

-- name: notify :exec
-- One notification per recipient: the direct event (assigned, resolved) wins over the
-- follow event; the actor is never notified of their own action.
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
