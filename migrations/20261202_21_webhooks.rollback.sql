DELETE FROM notifications WHERE event = 'webhook_disabled';
ALTER TABLE notifications
    DROP CONSTRAINT notifications_event,
    DROP COLUMN webhook_id,
    ALTER COLUMN incident_id SET NOT NULL,
    ALTER COLUMN actor_id SET NOT NULL,
    ADD CONSTRAINT notifications_event CHECK (event IN
        ('assigned', 'resolved', 'followed_reported', 'followed_resolved'));
DROP TABLE webhook_redeliveries;
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
