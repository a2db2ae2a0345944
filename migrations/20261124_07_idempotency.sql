-- Responses to POSTs sent with an Idempotency-Key, per user, replayed for 24 hours.
-- Only successful responses are stored, in the transaction of the write they describe.
-- depends: 20261124_06_indexes

CREATE TABLE idempotency_keys (
    user_id     bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    key         text NOT NULL CONSTRAINT idempotency_keys_key_length CHECK (char_length(key) BETWEEN 1 AND 255),
    fingerprint bytea NOT NULL CONSTRAINT idempotency_keys_fingerprint_length CHECK (octet_length(fingerprint) = 32),
    status      smallint NOT NULL CONSTRAINT idempotency_keys_status_success CHECK (status BETWEEN 200 AND 299),
    body        bytea NOT NULL,
    location    text,
    etag        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
