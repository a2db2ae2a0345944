-- API tokens: only the SHA-256 of a token is stored. Each expires ttl_days after it is issued.

-- name: create_token :one
-- Also drops the user's expired tokens, so the table keeps no dead ones for long.
WITH expired AS (DELETE FROM api_tokens WHERE user_id = %(user_id)s AND expires_at <= now())
INSERT INTO api_tokens (token_hash, user_id, expires_at)
VALUES (%(token_hash)s, %(user_id)s, now() + make_interval(days => %(ttl_days)s))
RETURNING id, created_at, expires_at

-- name: delete_token :execrows
DELETE FROM api_tokens WHERE token_hash = %(token_hash)s

-- name: list_tokens :many
-- One page of the user's live tokens by id; `current` marks the one the request was sent with.
SELECT id, created_at, expires_at, token_hash = %(token_hash)s AS current
FROM api_tokens
WHERE user_id = %(user_id)s AND expires_at > now() AND id > %(after_id)s
ORDER BY id
LIMIT %(limit)s

-- name: revoke_token :execrows
DELETE FROM api_tokens WHERE id = %(id)s AND user_id = %(user_id)s AND expires_at > now()

-- Login throttling. A row per failed (or still running) login attempt under each of two keys:
-- the username with the client address, and the client address alone.

-- name: lock_login_address :exec
-- Serializes the check-and-count of one client address's attempts until the transaction ends
-- (both keys of an attempt belong to its address).
SELECT pg_advisory_xact_lock(hashtextextended(encode(%(address_key)s, 'hex'), 0))

-- name: admit_login :one
-- Counts the attempt under both keys, unless either already has its maximum of failures in the
-- window: then `retry_after` is the seconds until enough of them leave it, and nothing is
-- counted. `attempt_id` is the attempt's row under the address key. Also prunes rows older
-- than the window (skipping any another transaction holds), so the table holds one window.
WITH pruned AS (
    DELETE FROM login_failures
    WHERE id IN (
        SELECT id FROM login_failures WHERE failed_at <= now() - %(window)s::interval
        FOR UPDATE SKIP LOCKED
    )
),
blocking AS (
    (SELECT failed_at FROM login_failures
     WHERE throttle_key = %(pair_key)s AND failed_at > now() - %(window)s::interval
     ORDER BY failed_at DESC OFFSET %(pair_max)s::int - 1 LIMIT 1)
    UNION ALL
    (SELECT failed_at FROM login_failures
     WHERE throttle_key = %(address_key)s AND failed_at > now() - %(window)s::interval
     ORDER BY failed_at DESC OFFSET %(address_max)s::int - 1 LIMIT 1)
),
counted AS (
    INSERT INTO login_failures (throttle_key)
    SELECT k FROM (VALUES (%(pair_key)s::bytea), (%(address_key)s::bytea)) v (k)
    WHERE NOT EXISTS (SELECT FROM blocking)
    RETURNING id, throttle_key
)
SELECT (SELECT max(ceil(extract(epoch FROM failed_at + %(window)s::interval - now())))::int
        FROM blocking) AS retry_after,
       (SELECT id FROM counted WHERE throttle_key = %(address_key)s) AS attempt_id

-- name: forget_login_failures :exec
-- After a successful login: the failures of its username and address, and the attempt itself.
DELETE FROM login_failures WHERE throttle_key = %(pair_key)s OR id = %(attempt_id)s
