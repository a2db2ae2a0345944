-- Notifications; record_event (history.sql) writes them with the history entry of their event.

-- name: list_notifications :many
-- The caller's, newest first.
SELECT id, event, incident_id, actor_id, webhook_id, read, created_at
FROM notifications
WHERE user_id = %(user_id)s AND (NOT %(unread)s OR NOT read) AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s)
ORDER BY id DESC
LIMIT %(limit)s

-- name: mark_notification_read :execrows
UPDATE notifications SET read = true WHERE id = %(id)s AND user_id = %(user_id)s
