-- Stored responses of POSTs sent with an Idempotency-Key, per user, for 24 hours.

-- name: lock_idempotency_key :scalar
-- Held until the transaction ends; false while another request holds the same key.
SELECT pg_try_advisory_xact_lock(hashtextextended(%(user_id)s::text || ':' || %(key)s, 0))

-- name: get_idempotent_response :one
SELECT fingerprint, status, body, location, etag
FROM idempotency_keys
WHERE user_id = %(user_id)s AND key = %(key)s AND created_at > now() - interval '24 hours'

-- name: save_idempotent_response :exec
-- Replaces an expired response stored under the same key.
INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body, location, etag)
VALUES (%(user_id)s, %(key)s, %(fingerprint)s, %(status)s, %(body)s, %(location)s, %(etag)s)
ON CONFLICT (user_id, key) DO UPDATE
SET fingerprint = excluded.fingerprint, status = excluded.status, body = excluded.body,
    location = excluded.location, etag = excluded.etag, created_at = now()
