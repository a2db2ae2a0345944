-- Who follows whom.

-- name: follow_user :exec
INSERT INTO follows (follower_id, followee_id) VALUES (%(follower_id)s, %(followee_id)s)
ON CONFLICT DO NOTHING

-- name: unfollow_user :exec
DELETE FROM follows WHERE follower_id = %(follower_id)s AND followee_id = %(followee_id)s

-- name: list_followers :many
SELECT u.id, u.username, u.email, u.role, u.active, u.created_at, u.updated_at
FROM follows f JOIN users u ON u.id = f.follower_id
WHERE f.followee_id = %(user_id)s AND u.id > %(after_id)s
ORDER BY u.id
LIMIT %(limit)s

-- name: list_following :many
SELECT u.id, u.username, u.email, u.role, u.active, u.created_at, u.updated_at
FROM follows f JOIN users u ON u.id = f.followee_id
WHERE f.follower_id = %(user_id)s AND u.id > %(after_id)s
ORDER BY u.id
LIMIT %(limit)s
