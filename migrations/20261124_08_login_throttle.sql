-- Failed logins, by the SHA-256 of the lower-cased username (so no typed-in password lands
-- here in clear), for throttling; rows older than the throttle window are pruned on insert.
-- depends: 20261124_07_idempotency

CREATE TABLE login_failures (
    username_hash bytea NOT NULL CONSTRAINT login_failures_hash_length CHECK (octet_length(username_hash) = 32),
    failed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_username_idx ON login_failures (username_hash, failed_at);
CREATE INDEX login_failures_failed_at_idx ON login_failures (failed_at);
