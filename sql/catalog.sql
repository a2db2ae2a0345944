-- The app's schema as PostgreSQL's catalog describes it, for `make diagram`.

-- name: app_tables :fragment
-- The app's tables: every table in schema public but yoyo's own.
SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.relname NOT LIKE '\_yoyo\_%%' AND c.relname <> 'yoyo_lock'

-- name: read_catalog_columns :many
-- Every column of the app's tables, in table order, with its type and key flags.
SELECT c.relname AS table, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       coalesce(a.attnum = ANY(pk.conkey), false) AS primary_key,
       EXISTS (SELECT FROM pg_constraint fk WHERE fk.conrelid = c.oid AND fk.contype = 'f'
               AND a.attnum = ANY(fk.conkey)) AS foreign_key
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
WHERE c.oid IN ({:app_tables})
ORDER BY a.attnum

-- name: read_catalog_foreign_keys :many
-- Every foreign key of the app's tables: columns, target table and columns, optional or not.
SELECT src.relname AS table, dst.relname AS target,
       array(SELECT col.attname FROM unnest(fk.conkey) WITH ORDINALITY k(attnum, i)
             JOIN pg_attribute col ON col.attrelid = fk.conrelid AND col.attnum = k.attnum
             ORDER BY k.i) AS columns,
       array(SELECT col.attname FROM unnest(fk.confkey) WITH ORDINALITY k(attnum, i)
             JOIN pg_attribute col ON col.attrelid = fk.confrelid AND col.attnum = k.attnum
             ORDER BY k.i) AS target_columns,
       EXISTS (SELECT FROM pg_attribute col WHERE col.attrelid = fk.conrelid
               AND col.attnum = ANY(fk.conkey) AND NOT col.attnotnull) AS optional
FROM pg_constraint fk
JOIN pg_class src ON src.oid = fk.conrelid
JOIN pg_class dst ON dst.oid = fk.confrelid
WHERE fk.contype = 'f' AND fk.conrelid IN ({:app_tables})

-- name: read_catalog_tables :many
-- The app's tables by name (for the tests, which empty them all between tests).
SELECT c.relname AS name FROM pg_class c WHERE c.oid IN ({:app_tables}) ORDER BY c.relname

-- name: count_user_objects :scalar
-- Relations (tables, sequences, views, indexes, ...) and functions outside PostgreSQL's own
-- schemas: none in a database that `python -m api restore` may restore into.
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%%')
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%%') AS n
