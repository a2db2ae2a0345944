-- word_pairs (migration 13) in PL/pgSQL, with the same query and the same results, so the index
-- built with it stays valid. PERF: PostgreSQL 15 plans the query of a SQL function again in
-- every statement that calls it, and every write of an incident calls it once for the word-pair
-- index; PL/pgSQL plans it once per connection. A single-row INSERT into incidents took
-- 0.34-0.44 ms with the SQL function and 0.10 ms without the index; pgbench on that INSERT,
-- five alternating rounds at 1M incidents: 2,677 tps (median) with the SQL function, 4,557
-- with this one.
-- depends: 20261125_14_search_statistics
CREATE OR REPLACE FUNCTION word_pairs(vector tsvector) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN (
        SELECT CASE WHEN coalesce(sum(octet_length(pair)), 0) < 1000000
                    THEN array_to_tsvector(coalesce(array_agg(pair), '{}'))
                    ELSE 'unindexed' END
        FROM (SELECT DISTINCT a.lexeme || ' ' || b.lexeme AS pair
              FROM (SELECT lexeme, unnest(positions) AS position FROM unnest(vector)) a
              JOIN (SELECT lexeme, unnest(positions) AS position FROM unnest(vector)) b
                ON b.position = a.position + 1
              WHERE octet_length(a.lexeme) + octet_length(b.lexeme) < 1000) pairs
    );
END
$$;
