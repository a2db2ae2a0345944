-- Readiness: the database answers.

-- name: ping :scalar
SELECT 1
