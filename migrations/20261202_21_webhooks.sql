-- Webhooks: admins subscribe URLs to the change feed; the delivery worker (api/delivery.py)
-- sends each matching event after `cursor`, in position order, one at a time per webhook.
-- `failures` counts the failed attempts at the event after `cursor`; the next attempt is due at
-- `next_attempt_at`. The secret signs the deliveries, so it is kept as is (it is not a password:
-- it is only ever used to compute the HMAC the receiver checks); after a rotation the previous
-- one also signs until `previous_secret_expires_at`.
-- depends: 20261202_20_change_feed

CREATE TABLE webhooks (
    id                         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url                        text NOT NULL,
    event_types                text[] NOT NULL,
    description                text,
    active                     boolean NOT NULL DEFAULT true,
    disabled_reason            text,
    cursor                     bigint NOT NULL,
    secret                     text NOT NULL,
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    failures                   integer NOT NULL DEFAULT 0,
    next_attempt_at            timestamptz NOT NULL DEFAULT now(),
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);

-- Every attempt, for the delivery log (GET /webhooks/{id}/deliveries, newest first).
CREATE TABLE webhook_deliveries (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id  bigint NOT NULL REFERENCES webhooks ON DELETE CASCADE,
    event_id    text NOT NULL,
    position    bigint,
    attempt     integer NOT NULL,
    status_code integer,
    error       text,
    duration_ms double precision NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_webhook_id_idx ON webhook_deliveries (webhook_id, id);

-- Events queued by POST /webhooks/{id}/redeliver: sent once more, apart from the cursor's order.
CREATE TABLE webhook_redeliveries (
    webhook_id bigint NOT NULL REFERENCES webhooks ON DELETE CASCADE,
    position   bigint NOT NULL,
    PRIMARY KEY (webhook_id, position)
);

-- A disabled webhook notifies every admin: such a notification names the webhook, not an
-- incident or an actor.
ALTER TABLE notifications
    ALTER COLUMN incident_id DROP NOT NULL,
    ALTER COLUMN actor_id DROP NOT NULL,
    ADD COLUMN webhook_id bigint REFERENCES webhooks ON DELETE CASCADE,
    DROP CONSTRAINT notifications_event,
    ADD CONSTRAINT notifications_event CHECK (
        CASE event WHEN 'webhook_disabled' THEN webhook_id IS NOT NULL AND incident_id IS NULL
                   ELSE event IN ('assigned', 'resolved', 'followed_reported', 'followed_resolved')
                        AND webhook_id IS NULL AND incident_id IS NOT NULL AND actor_id IS NOT NULL END);
CREATE INDEX notifications_webhook_id_idx ON notifications (webhook_id) WHERE webhook_id IS NOT NULL;
