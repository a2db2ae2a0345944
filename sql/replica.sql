-- Reading from a streaming replica (api/replica.py): how far behind it is, and read-your-writes.
-- WAL positions are bigints (bytes since 0/0), so Python compares them as numbers.

-- name: primary_position :scalar
SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint

-- name: replayed_position :scalar
-- NULL on a server that is not (or no longer) a replica.
SELECT (pg_last_wal_replay_lsn() - '0/0')::bigint

-- name: mark_write :exec
-- Run right after a request's write committed: the WAL has reached at least its commit.
INSERT INTO write_marks AS m (user_id, written_up_to)
VALUES (%(user_id)s, pg_current_wal_insert_lsn())
ON CONFLICT (user_id) DO UPDATE SET written_up_to = greatest(m.written_up_to, excluded.written_up_to)

-- name: get_reader_by_token :one
-- token_user, and the WAL position the user's last write reached (0 when none is noted).
SELECT tu.*, coalesce((m.written_up_to - '0/0')::bigint, 0) AS written_up_to
FROM ({:token_user}) AS tu
LEFT JOIN write_marks m ON m.user_id = tu.id
