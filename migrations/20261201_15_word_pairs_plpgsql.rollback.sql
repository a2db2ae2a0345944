CREATE OR REPLACE FUNCTION word_pairs(vector tsvector) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN coalesce(sum(octet_length(pair)), 0) < 1000000
                THEN array_to_tsvector(coalesce(array_agg(pair), '{}'))
                ELSE 'unindexed' END
    FROM (SELECT DISTINCT a.lexeme || ' ' || b.lexeme AS pair
          FROM (SELECT lexeme, unnest(positions) AS position FROM unnest(vector)) a
          JOIN (SELECT lexeme, unnest(positions) AS position FROM unnest(vector)) b
            ON b.position = a.position + 1
          WHERE octet_length(a.lexeme) + octet_length(b.lexeme) < 1000) pairs
$$;
