-- Phrase searches through an index of adjacent word pairs. PERF: the search index holds no
-- positions, so a phrase of two common words ("pod evicted") made PostgreSQL recheck every
-- incident holding both words: 30,000 heap rows for 600 matches, 61-149 ms at 1M incidents.
-- With this index: 5 ms. The price (bench/results/explain.md, README): a 257 MB index built
-- in about 105 s, and each write of an incident computes its pairs and adds them to a second
-- GIN index.
-- depends: 20261125_12_active_search

-- Every pair of lexemes at adjacent positions of `vector`, each as one lexeme "a b"; a match
-- of the phrase 'a' <-> 'b' holds the pair "a b" (phrase_pairs writes the other side). Pairs
-- over 1,000 bytes are left out (phrase_pairs never asks for them). A vector whose pairs would
-- not fit in a tsvector (1 MB) gets the lexeme 'unindexed' instead, which no pair can be (a
-- pair holds a space) and every pair query also accepts.
-- PERF: PL/pgSQL, not SQL: PostgreSQL 15 plans a SQL function's query again in every statement
-- that calls it, and the index calls this in every write of an incident (a single-row INSERT
-- executed in 0.34-0.44 ms, against 0.10 ms without the index); PL/pgSQL plans it once per
-- connection. pgbench on that INSERT at 1M incidents, five alternating rounds: 2,677 tps
-- (median) with the SQL function, 4,557 with this one.
CREATE FUNCTION word_pairs(vector tsvector) RETURNS tsvector
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

-- The word pairs every match of `query` holds, as a query of word_pairs' index, or NULL when
-- it needs none. Pairs come from adjacent lexemes of a phrase ('a' <-> 'b'), read off the
-- query's text; none from a query with an OR or a negated group, where a phrase need not
-- match, and none from a negated or prefix lexeme.
CREATE FUNCTION phrase_pairs(query tsquery) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    WITH tokens AS (
        SELECT t.match[1] AS token, t.n
        FROM regexp_matches(query::text, $re$('(?:[^']|'')*'(?::[*A-D]+)?|<[^>]*>|\S)$re$, 'g')
             WITH ORDINALITY AS t(match, n)
    ),
    pairs AS (
        SELECT DISTINCT substr(a.token, 2, length(a.token) - 2) || ' '
                        || substr(b.token, 2, length(b.token) - 2) AS pair
        FROM tokens a
        JOIN tokens phrase ON phrase.n = a.n + 1 AND phrase.token = '<->'
        JOIN tokens b ON b.n = a.n + 2
        WHERE a.token LIKE '''%''' AND b.token LIKE '''%'''  -- lexemes, but no prefix or weights
          AND NOT EXISTS (SELECT FROM tokens p WHERE p.n = a.n - 1 AND p.token = '!')
    )
    SELECT ('(' || string_agg('''' || pair || '''', ' & ') || ') | ''unindexed''')::tsquery
    FROM pairs
    WHERE octet_length(pair) <= 1000  -- the escaped text: never shorter than the pair itself
      AND NOT EXISTS (SELECT FROM tokens WHERE token = '|')
      AND NOT EXISTS (SELECT FROM tokens a JOIN tokens b ON b.n = a.n + 1 WHERE a.token = '!' AND b.token = '(')
    HAVING count(*) > 0
$$;

CREATE INDEX incidents_word_pairs_idx ON incidents USING gin (word_pairs(search_vector))
    WITH (gin_pending_list_limit = 256);
-- PERF: most pairs are rare, and PostgreSQL guesses a pair missing from its statistics at half
-- the rarest one listed there. With the default 1,000 listed pairs that guess was 3,900
-- incidents for a pair in 600, so it read "pod evicted" through parallel workers (13 ms) or
-- together with the status index (40 ms with status=resolved); with 4,000 pairs it takes the
-- pairs alone (5 ms each). ANALYZE of incidents then takes about 10 s at 1M rows, not 3 s.
ALTER INDEX incidents_word_pairs_idx ALTER COLUMN 1 SET STATISTICS 400;

-- PERF: a GIN index gathers new entries in a pending list, which the write that fills it merges
-- into the index while its client waits. With PostgreSQL's 4 MB list on both search indexes,
-- comments under load had a p99 of 84-160 ms (autovacuum held off, three rounds); with 256 kB
-- lists, merged more often in smaller pieces, 29-33 ms, at the same throughput.
ALTER INDEX incidents_search_idx SET (gin_pending_list_limit = 256);
