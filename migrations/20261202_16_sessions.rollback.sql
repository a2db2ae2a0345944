DROP TABLE login_failures;
CREATE TABLE login_failures (
    username_hash bytea NOT NULL CONSTRAINT login_failures_hash_length CHECK (octet_length(username_hash) = 32),
    failed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_username_idx ON login_failures (username_hash, failed_at);
CREATE INDEX login_failures_failed_at_idx ON login_failures (failed_at);

DROP INDEX api_tokens_user_id_idx;
CREATE INDEX api_tokens_user_id_idx ON api_tokens (user_id);
ALTER TABLE api_tokens DROP COLUMN expires_at, DROP COLUMN id;
