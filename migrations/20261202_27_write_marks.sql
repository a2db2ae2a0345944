-- depends: 20261202_23_feed_after_turns
-- Read-your-writes with a streaming replica: how far the WAL had got when each user's last
-- write committed (api/replica.py). UNLOGGED: writing a mark costs no WAL and no flush at
-- commit, and a replica neither gets nor needs the marks; a crash empties the table, which
-- only sends a few reads to the replica that would have gone to the primary. No foreign key:
-- the check would lock the writer's users row at every write, and a deleted user's mark is inert.
CREATE UNLOGGED TABLE write_marks (
    user_id bigint PRIMARY KEY,
    written_up_to pg_lsn NOT NULL
);
