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

-- name: update_user :one
-- A NULL password_hash keeps the current password.
UPDATE users
SET username = %(username)s, email = %(email)s, role = %(role)s, active = %(active)s,
    password_hash = coalesce(%(password_hash)s, password_hash), updated_at = now()
WHERE id = %(id)s
RETURNING id, username, email, role, active, created_at, updated_at

-- name: delete_user :execrows
DELETE FROM users WHERE id = %(id)s

-- name: token_user :fragment
-- The active user behind a bearer token, by the token's SHA-256 (no row for any other token).
SELECT u.id, u.username, u.role
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = %(token_hash)s AND u.active

-- name: get_user_by_token :one
{:token_user}

-- name: get_login :one
SELECT id, username, email, role, active, created_at, updated_at, password_hash
FROM users WHERE lower(username) = lower(%(username)s)

-- name: count_users :scalar
SELECT count(*) FROM users
