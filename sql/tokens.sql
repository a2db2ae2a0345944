-- API tokens: only the SHA-256 of a token is stored.

-- name: create_token :exec
INSERT INTO api_tokens (token_hash, user_id) VALUES (%(token_hash)s, %(user_id)s)

-- name: delete_token :execrows
DELETE FROM api_tokens WHERE token_hash = %(token_hash)s
