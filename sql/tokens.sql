-- API tokens: only the SHA-256 of a token is stored.

-- name: create_token :exec
INSERT INTO api_tokens (token_hash, user_id) VALUES (%(token_hash)s, %(user_id)s)

-- name: delete_token :execrows
DELETE FROM api_tokens WHERE token_hash = %(token_hash)s

-- name: login_retry_after :scalar
-- Seconds until a throttled username may try again: the time until the failure that made
-- it throttled leaves the window; NULL while it failed fewer than max_failures times in it.
SELECT ceil(extract(epoch FROM failed_at + %(window)s::interval - now()))::int
FROM login_failures
WHERE username_hash = %(username_hash)s AND failed_at > now() - %(window)s::interval
ORDER BY failed_at DESC
OFFSET %(max_failures)s::int - 1 LIMIT 1

-- name: record_login_failure :exec
-- Also prunes every failure older than the window, so the table holds one window at most.
WITH pruned AS (DELETE FROM login_failures WHERE failed_at <= now() - %(window)s::interval)
INSERT INTO login_failures (username_hash) VALUES (%(username_hash)s)

-- name: clear_login_failures :exec
DELETE FROM login_failures WHERE username_hash = %(username_hash)s
