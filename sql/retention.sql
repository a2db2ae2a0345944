-- Retention: rows past their use, deleted in bounded batches by the retention job that every
-- worker runs (api/retention.py); one worker at a time does a round.

-- name: claim_retention :scalar
-- True for the one worker that deletes a batch now; the others skip their round. Held until
-- the batch's transaction ends (a transaction lock, which a pooler in transaction mode keeps
-- on one server session, unlike a session lock).
SELECT pg_try_advisory_xact_lock(hashtextextended('incidents retention', 0))

-- name: purge_expired_tokens :execrows
-- Tokens past their expiry, which no request accepts any more. (A scan: a few rows per user.)
DELETE FROM api_tokens
WHERE ctid = ANY(ARRAY(SELECT ctid FROM api_tokens WHERE expires_at <= now() LIMIT %(batch)s))

-- name: purge_idempotency_keys :execrows
-- Stored responses past their 24 hours.
DELETE FROM idempotency_keys
WHERE ctid = ANY(ARRAY(SELECT ctid FROM idempotency_keys
                       WHERE created_at <= now() - interval '24 hours' LIMIT %(batch)s))

-- name: purge_login_failures :execrows
-- Failed logins older than the throttle's window, which no longer count.
DELETE FROM login_failures
WHERE ctid = ANY(ARRAY(SELECT ctid FROM login_failures
                       WHERE failed_at <= now() - %(window)s::interval LIMIT %(batch)s))

-- name: purge_events :scalar
-- Feed events older than the retention, from the start of the feed up to the first one still
-- kept, so that what remains has no holes (occurred_at is each transaction's start: nearly,
-- not exactly, in position order), and only final ones (below feed_horizon) that every active
-- webhook has delivered (a disabled one keeps nothing from the retention); records the
-- position pruned through (readers behind it get 410). Returns how many were deleted. PERF: a
-- batch reads the first `batch` positions by the primary key, no index on occurred_at.
WITH head AS (
    SELECT position, occurred_at FROM events
    WHERE position < {:feed_horizon}
      AND position <= coalesce((SELECT min(cursor) FROM webhooks WHERE active), position)
    ORDER BY position LIMIT %(batch)s
), first_kept AS (
    SELECT min(position) AS position FROM head
    WHERE occurred_at > now() - make_interval(days => %(days)s)
), deleted AS (
    DELETE FROM events
    WHERE position IN (SELECT head.position FROM head, first_kept
                       WHERE first_kept.position IS NULL OR head.position < first_kept.position)
    RETURNING position
), recorded AS (
    UPDATE events_pruned SET through_position = (SELECT max(position) FROM deleted)
    WHERE EXISTS (SELECT FROM deleted)
)
SELECT count(*) FROM deleted

-- name: purge_webhook_deliveries :execrows
-- Webhook delivery log entries as old as the events the feed no longer keeps. PERF: a batch
-- reads the oldest `batch` entries by the primary key (ids follow time closely enough).
DELETE FROM webhook_deliveries
WHERE id IN (SELECT id FROM webhook_deliveries ORDER BY id LIMIT %(batch)s)
  AND created_at <= now() - make_interval(days => %(days)s)
