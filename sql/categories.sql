-- Categories.

-- name: get_category :one
SELECT id, name, created_at FROM categories WHERE id = %(id)s

-- name: list_categories :many
SELECT id, name, created_at FROM categories
WHERE id > %(after_id)s
ORDER BY id
LIMIT %(limit)s

-- name: create_category :one
INSERT INTO categories (name) VALUES (%(name)s)
RETURNING id, name, created_at

-- name: update_category :one
UPDATE categories SET name = coalesce(%(name)s, name) WHERE id = %(id)s
RETURNING id, name, created_at

-- name: delete_category :execrows
-- Its links to incidents go with it (ON DELETE CASCADE); incidents stay.
DELETE FROM categories WHERE id = %(id)s

-- name: find_missing_categories :many
-- Positions (0-based) of the ids that name no category, for precise error pointers.
SELECT (u.ord - 1)::int AS position
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS u(id, ord)
WHERE NOT EXISTS (SELECT 1 FROM categories c WHERE c.id = u.id)
ORDER BY u.ord
