-- Full-text search over incidents (title A, description B, comments C).

-- name: search_incidents :many :custom_plan
-- One page of the newest %(max_candidates)s matches, best first (ties by id), after the
-- cursor's (rank, id) when given. PERF: ranking reads each match's whole vector, so only those
-- candidates are ranked; PostgreSQL finds them by reading the primary key backwards when the
-- terms are common, through the GIN index when they are rare (bench/results/explain.md).
-- NOTE: the query is spelled out rather than taken from a CTE, and planned for each search
-- (:custom_plan), so that the planner sees its value: that choice needs the terms' frequencies.
-- PERF: a phrase with adjacent words ("pod evicted") is looked up through the index of word
-- pairs (migration 13), and tested on the candidates only as a filter: as an index condition
-- too, PostgreSQL would also read the search index and recompute each candidate's pairs. A
-- phrase without adjacent words ("failed to start") goes through the search index, and is
-- tested twice because PostgreSQL estimates it to match as often as its words anywhere, far
-- too often, and would then read the whole table backwards for a rare one; the second test,
-- a filter the index cannot take, squares that estimate.
-- A long thread's comments past the bound of migration 28 are documents of their own
-- (search_overflow: title, description and one comment): the second branch takes the newest
-- incidents that one of them matches and their own vector does not, ranked as their best
-- matching document. Exclusions (-word) hold for an incident's whole text: each candidate's
-- overflow documents are checked for them, only when the query has any (query_exclusions is
-- NULL otherwise, and the test folds away as the query is planned).
-- The snippet is HTML-escaped text with matches in <b>...</b>, so it is safe to render. It is
-- drawn from the title, the description and the first 20 comments, cut at 20,000 characters:
-- ts_headline reads the whole text it is given, and an incident's comments are unbounded
-- (PERF: 2,000 comments of 9,000 characters took 1.9 s per page that showed their incident).
WITH candidates AS (
    (SELECT i.id, i.search_vector, NULL::real AS rank
     FROM incidents i
     WHERE CASE WHEN phrase_pairs(websearch_to_tsquery('english', %(query)s)) IS NOT NULL
                THEN word_pairs(i.search_vector) @@ phrase_pairs(websearch_to_tsquery('english', %(query)s))
                     AND (i.search_vector @@ websearch_to_tsquery('english', %(query)s)) IS TRUE
                WHEN strpos(websearch_to_tsquery('english', %(query)s)::text, '<') > 0
                THEN i.search_vector @@ websearch_to_tsquery('english', %(query)s)
                     AND (i.search_vector @@ websearch_to_tsquery('english', %(query)s)) IS TRUE
                ELSE i.search_vector @@ websearch_to_tsquery('english', %(query)s) END
       AND {:incident_filters}
       AND (query_exclusions(websearch_to_tsquery('english', %(query)s)) IS NULL OR NOT EXISTS (
             SELECT FROM search_overflow x
             WHERE x.incident_id = i.id
               AND x.search_vector @@ query_exclusions(websearch_to_tsquery('english', %(query)s))))
     ORDER BY i.id DESC
     LIMIT %(max_candidates)s)
    UNION ALL
    (SELECT i.id, NULL, (SELECT max(ts_rank_cd(x.search_vector, websearch_to_tsquery('english', %(query)s)))
                         FROM search_overflow x
                         WHERE x.incident_id = i.id
                           AND x.search_vector @@ websearch_to_tsquery('english', %(query)s))
     FROM (SELECT DISTINCT o.incident_id
           FROM search_overflow o
           WHERE o.search_vector @@ websearch_to_tsquery('english', %(query)s)) AS o
     JOIN incidents i ON i.id = o.incident_id
     WHERE NOT i.search_vector @@ websearch_to_tsquery('english', %(query)s)
       AND {:incident_filters}
       AND (query_exclusions(websearch_to_tsquery('english', %(query)s)) IS NULL OR (
             NOT i.search_vector @@ query_exclusions(websearch_to_tsquery('english', %(query)s))
             AND NOT EXISTS (
               SELECT FROM search_overflow x
               WHERE x.incident_id = i.id
                 AND x.search_vector @@ query_exclusions(websearch_to_tsquery('english', %(query)s)))))
     ORDER BY i.id DESC
     LIMIT %(max_candidates)s)
    ORDER BY id DESC
    LIMIT %(max_candidates)s
),
ranked AS (
    SELECT c.id, coalesce(c.rank, ts_rank_cd(c.search_vector, websearch_to_tsquery('english', %(query)s))) AS rank
    FROM candidates c
),
hits AS (
    SELECT r.id, r.rank
    FROM ranked r
    WHERE %(after_id)s::bigint IS NULL OR (r.rank, r.id) < (%(after_rank)s::real, %(after_id)s)
    ORDER BY r.rank DESC, r.id DESC
    LIMIT %(limit)s
)
SELECT d.*, h.rank,
       ts_headline('english',
                   replace(replace(replace(left(concat_ws(' … ', d.title, nullif(d.description, ''),
                       (SELECT string_agg(c.content, ' … ' ORDER BY c.created_at, c.id)
                        FROM (SELECT content, created_at, id FROM comments
                              WHERE incident_id = d.id ORDER BY created_at, id LIMIT 20) c)), 20000),
                       '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
                   websearch_to_tsquery('english', %(query)s),
                   'StartSel=<b>, StopSel=</b>, MaxWords=30, MinWords=10, MaxFragments=2, FragmentDelimiter=" … "')
           AS snippet
FROM hits h JOIN incident_details d ON d.id = h.id
ORDER BY h.rank DESC, h.id DESC
