-- Categories; names are unique case-insensitively.
-- depends: 20261124_01_users
CREATE TABLE categories (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL
               CONSTRAINT categories_name_length CHECK (char_length(name) BETWEEN 1 AND 50 AND name ~ '\S'),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX categories_name_key ON categories (lower(name));
