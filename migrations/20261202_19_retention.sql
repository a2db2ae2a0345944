-- The retention job deletes idempotency keys past 24 hours across all users: by this index,
-- not a scan of every stored response.
-- depends: 20261202_15_active_search_pending_list

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
