-- An event's position (its transaction's id times 2^20 plus its ordinal in the transaction) is
-- taken by one function call per event, which keeps the transaction's last position in a
-- transaction-local setting, instead of by a CTE that called transaction_feed_base(), probed the
-- primary key for the transaction's earlier events and numbered the statement's events with a
-- window function: those plan nodes, set up again by every statement that publishes, were about
-- a fifth of what the event cost POST /incidents (see docs/decisions.md).
-- depends: 20261202_23_feed_after_turns

-- The next feed position of this transaction: after its earlier events (of this statement or
-- an earlier one). VOLATILE plpgsql, which the planner neither inlines nor evaluates ahead, so
-- the transaction gets its id only when the executor writes its first event (after any turn
-- the statement waited for). The setting is set local: it ends with the transaction, and a
-- rolled-back savepoint takes back its events and the positions they took together.
CREATE FUNCTION next_feed_position() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    base bigint := pg_current_xact_id()::text::bigint * 1048576;
    last bigint := nullif(current_setting('feed.last_position', true), '')::bigint;
BEGIN
    IF last IS NULL OR last < base THEN
        last := base;
    ELSIF last >= base + 1048575 THEN
        RAISE EXCEPTION 'a transaction publishes at most 1048575 events';
    END IF;
    RETURN set_config('feed.last_position', (last + 1)::text, true)::bigint;
END $$;

DROP FUNCTION transaction_feed_base();
