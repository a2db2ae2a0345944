-- Webhooks and their delivery (api/resources/webhooks.py, api/delivery.py).

-- name: webhook_columns :fragment
-- A webhook as the API shows it (never its secret).
id, url, event_types, description, active, disabled_reason, cursor, created_at, updated_at

-- name: signing_secrets :fragment
-- The secrets that sign a delivery to webhook `w` now: the current one, and the previous one
-- for 24 hours after a rotation.
w.secret, CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END AS previous_secret

-- name: awaited_by_webhook :fragment
-- Whether event `e` is one webhook `w` has yet to get: final (below feed_horizon), after its
-- cursor, of a type it subscribes to.
e.position > w.cursor AND e.position < {:feed_horizon} AND e.type = ANY(w.event_types)

-- name: add_to_delivery_totals :fragment
-- Adds the attempts a statement logs (its CTE `logged`, RETURNING webhook_id and error) to
-- their webhook's running totals: delivered when without an error, as webhooks.Attempt says.
-- GET /metrics reads them; the retention job prunes the log, never them.
INSERT INTO webhook_delivery_totals AS t (webhook_id, delivered, failed)
SELECT webhook_id, count(*) FILTER (WHERE error IS NULL), count(*) FILTER (WHERE error IS NOT NULL)
FROM logged
GROUP BY webhook_id
ON CONFLICT (webhook_id) DO UPDATE SET delivered = t.delivered + excluded.delivered,
                                       failed = t.failed + excluded.failed

-- name: notify_webhook_disabled :fragment
-- Notifies every active admin that webhook %(webhook_id)s was disabled, when the CTE `disabled`
-- has a row.
INSERT INTO notifications (user_id, event, webhook_id)
SELECT u.id, 'webhook_disabled', %(webhook_id)s
FROM users u
WHERE u.role = 'admin' AND u.active AND EXISTS (SELECT FROM disabled)

-- name: list_webhooks :many
SELECT {:webhook_columns} FROM webhooks
WHERE id > %(after_id)s
ORDER BY id
LIMIT %(limit)s

-- name: get_webhook :one
SELECT {:webhook_columns} FROM webhooks WHERE id = %(id)s

-- name: create_webhook :one
-- A new webhook starts at the feed's current end: after every event that is final now (any
-- other is delivered).
INSERT INTO webhooks (url, event_types, description, secret, cursor)
SELECT %(url)s, %(event_types)s, %(description)s, %(secret)s,
       greatest((SELECT max(position) FROM events WHERE position < {:feed_horizon}), pruned.through_position)
FROM events_pruned pruned
RETURNING {:webhook_columns}

-- name: update_webhook :one
-- The members sent change (a NULL parameter leaves its column alone; `set_description` says
-- whether description was sent, since it may be set to null). Reactivating, or moving the
-- cursor, makes the next attempt due now.
UPDATE webhooks SET
    url = coalesce(%(url)s::text, url),
    event_types = coalesce(%(event_types)s::text[], event_types),
    description = CASE WHEN %(set_description)s THEN %(description)s::text ELSE description END,
    active = coalesce(%(active)s::boolean, active),
    disabled_reason = CASE WHEN %(active)s::boolean THEN NULL ELSE disabled_reason END,
    cursor = coalesce(%(cursor)s::bigint, cursor),
    failures = CASE WHEN %(active)s::boolean OR %(cursor)s::bigint IS NOT NULL THEN 0 ELSE failures END,
    next_attempt_at = CASE WHEN %(active)s::boolean OR %(cursor)s::bigint IS NOT NULL THEN now()
                           ELSE next_attempt_at END,
    updated_at = now()
WHERE id = %(id)s
RETURNING {:webhook_columns}

-- name: delete_webhook :execrows
-- Its delivery log, queued redeliveries and notifications go with it (ON DELETE CASCADE).
DELETE FROM webhooks WHERE id = %(id)s

-- name: rotate_webhook_secret :execrows
-- The new secret signs from now on; the old one also signs for 24 hours.
UPDATE webhooks SET previous_secret = secret, previous_secret_expires_at = now() + interval '24 hours',
                    secret = %(secret)s, updated_at = now()
WHERE id = %(id)s

-- name: webhook_secrets :one
SELECT w.url, {:signing_secrets} FROM webhooks w WHERE w.id = %(id)s

-- name: list_deliveries :many
-- A webhook's attempts, newest first.
SELECT id, event_id, position, attempt, status_code, error, duration_ms, created_at
FROM webhook_deliveries
WHERE webhook_id = %(webhook_id)s AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s)
ORDER BY id DESC
LIMIT %(limit)s

-- name: queue_redeliveries :one
-- Queues the events at `positions` (those still kept) to be sent to the webhook once more;
-- the 0-based indexes of those not kept, when any, and how many events were queued (one
-- named twice, or queued already, is queued once).
WITH wanted AS (
    SELECT w.position, w.ord, EXISTS (SELECT FROM events e WHERE e.position = w.position) AS kept
    FROM unnest(%(positions)s::bigint[]) WITH ORDINALITY AS w(position, ord)
), queued AS (
    INSERT INTO webhook_redeliveries (webhook_id, position)
    SELECT %(webhook_id)s, position FROM wanted
    WHERE kept AND NOT EXISTS (SELECT FROM wanted missing WHERE NOT missing.kept)
    ON CONFLICT DO NOTHING
)
SELECT (SELECT count(DISTINCT position) FROM wanted WHERE kept)::int AS queued,
       array(SELECT ord - 1 FROM wanted WHERE NOT kept ORDER BY ord)::int[] AS missing

-- name: record_ping :exec
-- Logged only: a ping is a test of the receiver, not a delivery (no delivery totals).
INSERT INTO webhook_deliveries (webhook_id, event_id, attempt, status_code, error, duration_ms)
VALUES (%(webhook_id)s, %(event_id)s, 1, %(status_code)s, %(error)s, %(duration_ms)s)

-- name: wake_delivery :exec
-- Wakes the delivery workers (they LISTEN on this channel, and also poll).
SELECT pg_notify('webhook_delivery', '')

-- name: claim_due_webhooks :many :custom_plan
-- The active webhooks with something to send now, that no worker (this one included: `busy`)
-- is delivering: each is claimed with a session advisory lock, which the worker holds while
-- it delivers and which goes with its connection if it dies. On the way, each of the others
-- that has nothing to send up to the newest final event (below feed_horizon, as readers see
-- the feed) moves its cursor there, past the events it does not subscribe to, so that it holds
-- back neither the retention job nor this query's range: forwards only, while no worker
-- delivers to it (a transaction advisory lock on the same key), and not when its cursor, types
-- or state changed since this statement's snapshot (a PATCH: the row is checked again as
-- updated). PERF: one probe of the events per active webhook, as before; a row update only
-- for those the feed moved past.
WITH final AS (
    SELECT max(position) AS position FROM events WHERE position < {:feed_horizon}
), webhook AS (
    SELECT w.id, w.cursor, w.event_types, w.next_attempt_at,
           EXISTS (SELECT FROM events e WHERE {:awaited_by_webhook}) AS awaiting
    FROM webhooks w
    WHERE w.active AND w.id <> ALL(%(busy)s::bigint[])
), idle AS (
    SELECT webhook.id, webhook.cursor, webhook.event_types, final.position
    FROM webhook, final
    WHERE NOT webhook.awaiting AND webhook.cursor < final.position
    OFFSET 0  -- NOTE: keeps the lock below from being taken for rows this filters out
), passed AS (
    UPDATE webhooks w SET cursor = idle.position, failures = 0
    FROM idle
    WHERE w.id = idle.id AND w.cursor = idle.cursor AND w.event_types = idle.event_types AND w.active
      AND pg_try_advisory_xact_lock(hashtextextended('webhook', idle.id))
)
SELECT due.id FROM (
    SELECT webhook.id FROM webhook
    WHERE EXISTS (SELECT FROM webhook_redeliveries r WHERE r.webhook_id = webhook.id)
          OR webhook.next_attempt_at <= now() AND webhook.awaiting
    ORDER BY webhook.id
    OFFSET 0  -- NOTE: as above
) due
WHERE pg_try_advisory_lock(hashtextextended('webhook', due.id))

-- name: release_webhook :exec
SELECT pg_advisory_unlock(hashtextextended('webhook', %(id)s))

-- name: next_deliveries :many
-- What to send the webhook next, when it is still active: up to `limit` messages, its queued
-- redeliveries first, then the final events after its cursor that it subscribes to (once its
-- next attempt is due), each with the webhook's url, secrets, cursor, failures so far, and when
-- it was last changed.
SELECT w.url, {:signing_secrets}, w.cursor, w.failures, w.updated_at, e.redelivery, e.position, e.type,
       e.occurred_at, e.actor_id, e.incident_id, e.incident_version, {:event_data} AS data
FROM webhooks w
CROSS JOIN LATERAL (
    (SELECT true AS redelivery, e.* FROM webhook_redeliveries r JOIN events e USING (position)
     WHERE r.webhook_id = w.id ORDER BY r.position LIMIT %(limit)s)
    UNION ALL
    (SELECT false, e.* FROM events e
     WHERE w.next_attempt_at <= now() AND {:awaited_by_webhook}
     ORDER BY e.position LIMIT %(limit)s)
    ORDER BY redelivery DESC, position
    LIMIT %(limit)s
) e
WHERE w.id = %(webhook_id)s AND w.active

-- name: record_redelivery :exec
-- A redelivery is attempted once: logged, counted, and off the queue. With a `disabled_reason`
-- (the receiver answered 410 Gone) the webhook is disabled, as after any delivery, and every
-- active admin notified.
WITH logged AS (
    INSERT INTO webhook_deliveries (webhook_id, event_id, position, attempt, status_code, error, duration_ms)
    VALUES (%(webhook_id)s, %(event_id)s, %(position)s, 1, %(status_code)s, %(error)s, %(duration_ms)s)
    RETURNING webhook_id, error
), counted AS ({:add_to_delivery_totals}
), unqueued AS (
    DELETE FROM webhook_redeliveries WHERE webhook_id = %(webhook_id)s AND position = %(position)s
), disabled AS (
    UPDATE webhooks SET active = false, disabled_reason = %(disabled_reason)s, updated_at = now()
    WHERE id = %(webhook_id)s AND active AND %(disabled_reason)s::text IS NOT NULL
    RETURNING id
)
{:notify_webhook_disabled}

-- name: record_delivered :execrows
-- Events after the cursor delivered (in order), logged and counted; the cursor moves past the
-- last one. Unless the webhook was changed meanwhile (a PATCH, even one that set the cursor to
-- where it was, or a new secret) or disabled: then only the log and the totals remember them,
-- and what was sent goes again.
WITH logged AS (
    INSERT INTO webhook_deliveries (webhook_id, event_id, position, attempt, status_code, duration_ms)
    SELECT %(webhook_id)s, 'evt_' || d.position, d.position, d.attempt, d.status_code, d.duration_ms
    FROM unnest(%(positions)s::bigint[], %(attempts)s::int[], %(status_codes)s::int[],
                %(durations_ms)s::float8[]) AS d(position, attempt, status_code, duration_ms)
    RETURNING webhook_id, error
), counted AS ({:add_to_delivery_totals})
UPDATE webhooks SET cursor = (%(positions)s::bigint[])[cardinality(%(positions)s::bigint[])], failures = 0
WHERE id = %(webhook_id)s AND cursor = %(cursor)s AND updated_at = %(updated_at)s AND active

-- name: record_failure :exec
-- A failed attempt at the event after the cursor, logged and counted: the next one is due in
-- `retry_seconds`, or the webhook is disabled with `disabled_reason` (when that is not NULL)
-- and every active admin notified. Unless the webhook was changed meanwhile (as for
-- record_delivered) or disabled: then only the log and the totals remember the attempt.
WITH logged AS (
    INSERT INTO webhook_deliveries (webhook_id, event_id, position, attempt, status_code, error, duration_ms)
    VALUES (%(webhook_id)s, %(event_id)s, %(position)s, %(attempt)s, %(status_code)s, %(error)s, %(duration_ms)s)
    RETURNING webhook_id, error
), counted AS ({:add_to_delivery_totals}), updated AS (
    UPDATE webhooks SET
        failures = failures + 1,
        next_attempt_at = now() + make_interval(secs => %(retry_seconds)s),
        active = %(disabled_reason)s::text IS NULL,
        disabled_reason = %(disabled_reason)s,
        updated_at = CASE WHEN %(disabled_reason)s::text IS NULL THEN updated_at ELSE now() END
    WHERE id = %(webhook_id)s AND cursor = %(cursor)s AND updated_at = %(updated_at)s AND active
    RETURNING id
), disabled AS (
    SELECT id FROM updated WHERE %(disabled_reason)s::text IS NOT NULL
)
{:notify_webhook_disabled}

-- name: webhook_figures :one
-- For GET /metrics: how many webhooks are active, failing (the last attempt at their next event
-- failed) and disabled, how old the oldest event is that an active webhook has yet to get, in
-- seconds (0 when none is waiting), and how many delivery attempts ever succeeded and failed.
-- PERF: one primary-key probe per active webhook, one small row per webhook for the totals.
SELECT count(*) FILTER (WHERE w.active) AS active,
       count(*) FILTER (WHERE w.active AND w.failures > 0) AS failing,
       count(*) FILTER (WHERE NOT w.active) AS disabled,
       coalesce(extract(epoch FROM now() - min(waiting.occurred_at)), 0)::float8 AS delivery_lag_seconds,
       (SELECT coalesce(sum(delivered), 0) FROM webhook_delivery_totals)::bigint AS delivered,
       (SELECT coalesce(sum(failed), 0) FROM webhook_delivery_totals)::bigint AS failed
FROM webhooks w
LEFT JOIN LATERAL (
    SELECT e.occurred_at FROM events e
    WHERE w.active AND {:awaited_by_webhook}
    ORDER BY e.position LIMIT 1
) waiting ON true
