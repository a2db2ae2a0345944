-- Users. The representation never includes password_hash.

-- name: get_user :one
SELECT id, username, email, role, active, created_at, updated_at
FROM users WHERE id = %(id)s

-- name: list_users :many
-- One page by id; role and active are optional filters.
SELECT id, username, email, role, active, created_at, updated_at
FROM users
WHERE (%(role)s::user_role IS NULL OR role = %(role)s::user_role)
  AND (%(active)s::boolean IS NULL OR active = %(active)s)
  AND id > %(after_id)s
ORDER BY id
LIMIT %(limit)s

-- name: create_user :one
INSERT INTO users (username, email, role, active, password_hash)
VALUES (%(username)s, %(email)s, %(role)s, %(active)s, %(password_hash)s)
RETURNING id, username, email, role, active, created_at, updated_at

-- name: lock_user :one
-- The row to change, locked until the transaction ends.
SELECT id, username, email, role, active FROM users WHERE id = %(id)s FOR UPDATE

-- name: lock_active_admins :scalar
-- The ids of the active admins, each row locked until the transaction ends (in id order, so
-- two such transactions never deadlock): whoever changes an admin next sees this one's result.
SELECT coalesce(array_agg(id ORDER BY id), ARRAY[]::bigint[])
FROM (SELECT id FROM users WHERE role = 'admin' AND active ORDER BY id FOR NO KEY UPDATE) admins

-- name: get_user_with_password :one
-- For checks before a change (no lock): the caller may make it, and knows the current password.
SELECT id, username, email, role, active, password_hash FROM users WHERE id = %(id)s

-- name: update_user :one
-- A NULL password_hash keeps the current password. A new password revokes every token of the
-- user but the one the request was sent with (keep_token_hash); deactivation revokes them all.
WITH revoked AS (
    DELETE FROM api_tokens
    WHERE user_id = %(id)s
      AND (NOT %(active)s OR (%(password_hash)s::text IS NOT NULL AND token_hash <> %(keep_token_hash)s))
)
UPDATE users
SET username = %(username)s, email = %(email)s, role = %(role)s, active = %(active)s,
    password_hash = coalesce(%(password_hash)s, password_hash), updated_at = now()
WHERE id = %(id)s
RETURNING id, username, email, role, active, created_at, updated_at

-- name: delete_user :execrows
DELETE FROM users WHERE id = %(id)s

-- name: token_user :fragment
-- The active user behind a live bearer token, by the token's SHA-256 (no row for any other
-- token: unknown, revoked, expired, or of a deactivated user).
SELECT u.id, u.username, u.role
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = %(token_hash)s AND t.expires_at > now() AND u.active

-- name: get_user_by_token :one
{:token_user}

-- name: get_login :one
SELECT id, username, email, role, active, created_at, updated_at, password_hash
FROM users WHERE lower(username) = lower(%(username)s)

-- name: count_users :scalar
SELECT count(*) FROM users
