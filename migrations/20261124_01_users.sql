-- Users and their API tokens (only a SHA-256 of each token is stored).
CREATE TYPE user_role AS ENUM ('reporter', 'responder', 'admin');

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text NOT NULL
                  CONSTRAINT users_username_format CHECK (username ~ '^[A-Za-z0-9_.-]{3,50}$'),
    email         text NOT NULL
                  CONSTRAINT users_email_format CHECK (char_length(email) <= 254 AND email ~ '^[^@\s]+@[^@\s]+$'),
    role          user_role NOT NULL DEFAULT 'reporter',
    active        boolean NOT NULL DEFAULT true,
    password_hash text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE api_tokens (
    token_hash bytea PRIMARY KEY CONSTRAINT api_tokens_hash_length CHECK (octet_length(token_hash) = 32),
    user_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_tokens_user_id_idx ON api_tokens (user_id);
