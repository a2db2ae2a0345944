-- Sessions: a token gets an id (so its user can list and revoke it) and an expiry. Failed
-- logins are counted under a SHA-256 key, either of a username and client address or of a
-- client address alone; each row has an id so a login that succeeds can take back its own.
-- Tokens issued before this migration expire 30 days (the default TOKEN_TTL_DAYS) after issue.
-- depends: 20261202_15_active_search_pending_list

ALTER TABLE api_tokens
    ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT api_tokens_id_key UNIQUE,
    ADD COLUMN expires_at timestamptz;
UPDATE api_tokens SET expires_at = created_at + interval '30 days';
ALTER TABLE api_tokens ALTER COLUMN expires_at SET NOT NULL;
DROP INDEX api_tokens_user_id_idx;
CREATE INDEX api_tokens_user_id_idx ON api_tokens (user_id, id);

DROP TABLE login_failures;
CREATE TABLE login_failures (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    throttle_key bytea NOT NULL CONSTRAINT login_failures_key_length CHECK (octet_length(throttle_key) = 32),
    failed_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_key_idx ON login_failures (throttle_key, failed_at);
CREATE INDEX login_failures_failed_at_idx ON login_failures (failed_at);
