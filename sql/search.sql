-- Full-text search over incidents (title A, description B, comments C).

-- name: search_incidents :many
-- One page of matches, best first (ties by id), after the cursor's (rank, id) when given.
-- The snippet is HTML-escaped text with matches in <b>...</b>, so it is safe to render.
WITH q AS (SELECT websearch_to_tsquery('english', %(query)s) AS query),
hits AS (
    SELECT i.id, ts_rank_cd(i.search_vector, q.query) AS rank
    FROM incidents i CROSS JOIN q
    WHERE i.search_vector @@ q.query
      AND {incident_filters}
      AND (%(after_id)s::bigint IS NULL
           OR (ts_rank_cd(i.search_vector, q.query), i.id) < (%(after_rank)s::real, %(after_id)s))
    ORDER BY rank DESC, i.id DESC
    LIMIT %(limit)s
)
SELECT d.*, h.rank,
       ts_headline('english',
                   replace(replace(replace(concat_ws(' … ', d.title, nullif(d.description, ''),
                       (SELECT string_agg(c.content, ' … ' ORDER BY c.id) FROM comments c
                        WHERE c.incident_id = d.id)),
                       '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
                   q.query, 'StartSel=<b>, StopSel=</b>, MaxWords=30, MinWords=10, MaxFragments=2, FragmentDelimiter=" … "')
           AS snippet
FROM hits h JOIN incident_details d ON d.id = h.id CROSS JOIN q
ORDER BY h.rank DESC, h.id DESC
