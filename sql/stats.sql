-- Incident analytics, in one round trip.

-- name: stats_days :fragment
-- The days of the daily series, today last, and the moment the first one starts.
day AS (
    SELECT (now() AT TIME ZONE 'UTC')::date - offs AS day
    FROM generate_series(0, %(days)s - 1) AS offs
),
window_start AS (SELECT (min(day)::timestamp AT TIME ZONE 'UTC') AS at FROM day)

-- name: stats_workload :fragment
-- The open workload per assignee, busiest first, of the incidents matching the filters.
-- PERF: an index-only scan of open and in-progress incidents (migration 24).
(SELECT coalesce(json_agg(json_build_object('user_id', u.id, 'username', u.username,
                                                'open', w.open, 'in_progress', w.in_progress)
                              ORDER BY w.open + w.in_progress DESC, u.id), '[]')
     FROM (SELECT i.assignee_id,
                  count(*) FILTER (WHERE i.status = 'open') AS open,
                  count(*) FILTER (WHERE i.status = 'in_progress') AS in_progress
           FROM incidents i
           WHERE {:incident_filters}
             AND i.status IN ('open', 'in_progress') AND i.assignee_id IS NOT NULL
           GROUP BY i.assignee_id) AS w
     JOIN users u ON u.id = w.assignee_id)

-- name: stats_daily :fragment
-- Opened and resolved per UTC day of the incidents matching the filters, from the incidents.
(SELECT json_agg(json_build_object('date', day.day, 'opened', coalesce(o.n, 0),
                                       'resolved', coalesce(r.n, 0)) ORDER BY day.day)
     FROM day
     LEFT JOIN (SELECT (i.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
                FROM incidents i, window_start
                WHERE {:incident_filters} AND i.created_at >= window_start.at
                GROUP BY 1) AS o ON o.day = day.day
     LEFT JOIN (SELECT (i.resolved_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
                FROM incidents i, window_start
                WHERE {:incident_filters} AND i.resolved_at >= window_start.at
                GROUP BY 1) AS r ON r.day = day.day)

-- name: incident_stats :one :custom_plan
-- For the incidents matching the filters: counts by status and severity (every value, zeros
-- included); MTTA (created -> acknowledged) and MTTR (created -> resolved) in seconds as mean,
-- p50 and p90, overall and per severity (null where none qualify); open workload per
-- assignee, busiest first; opened and resolved per UTC day for the last `days` days.
-- PERF: the figures take one pass over the selection (the percentiles sort each severity's
-- durations and then all of them); workload and the daily series read only the rows they
-- need, through their own partial indexes. Requests without filters take incident_stats_all,
-- and those filtering only on what the rollups are keyed by incident_stats_rollup.
WITH figures AS (
    SELECT i.severity, GROUPING(i.severity) = 1 AS overall, count(*) AS n,
           count(*) FILTER (WHERE i.status = 'open') AS open,
           count(*) FILTER (WHERE i.status = 'in_progress') AS in_progress,
           count(*) FILTER (WHERE i.status = 'resolved') AS resolved,
           count(*) FILTER (WHERE i.status = 'closed') AS closed,
           avg(d.ack) AS ack_mean, percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY d.ack) AS ack_p,
           avg(d.res) AS res_mean, percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY d.res) AS res_p
    FROM incidents i,
         LATERAL (SELECT extract(epoch FROM i.acknowledged_at - i.created_at)::float8 AS ack,
                         extract(epoch FROM i.resolved_at - i.created_at)::float8 AS res) AS d
    WHERE {:incident_filters}
    GROUP BY GROUPING SETS ((i.severity), ())
),
overall AS (SELECT * FROM figures WHERE overall),
by_severity AS (
    SELECT s.severity, f.n, f.ack_mean, f.ack_p, f.res_mean, f.res_p
    FROM unnest(enum_range(NULL::incident_severity)) AS s(severity)
    LEFT JOIN figures f ON f.severity = s.severity AND NOT f.overall
),
{:stats_days}
SELECT
    json_build_object('open', open, 'in_progress', in_progress, 'resolved', resolved,
                      'closed', closed) AS by_status,
    (SELECT json_object_agg(severity, coalesce(n, 0) ORDER BY severity) FROM by_severity) AS by_severity,
    json_build_object('mean', ack_mean, 'p50', ack_p[1], 'p90', ack_p[2], 'by_severity',
        (SELECT json_object_agg(severity, json_build_object('mean', ack_mean, 'p50', ack_p[1], 'p90', ack_p[2])
                                ORDER BY severity) FROM by_severity)) AS mtta_seconds,
    json_build_object('mean', res_mean, 'p50', res_p[1], 'p90', res_p[2], 'by_severity',
        (SELECT json_object_agg(severity, json_build_object('mean', res_mean, 'p50', res_p[1], 'p90', res_p[2])
                                ORDER BY severity) FROM by_severity)) AS mttr_seconds,
{:stats_workload} AS workload,
{:stats_daily} AS daily
FROM overall

-- name: stats_rollup_filters :fragment
-- incident_filters' status, severity, source and unassigned filters on a row `r` of the
-- rollups of migration 24.
(%(status)s::incident_status[] IS NULL OR r.status = ANY(%(status)s::incident_status[]))
  AND (%(severity)s::incident_severity[] IS NULL OR r.severity = ANY(%(severity)s::incident_severity[]))
  AND (%(source)s::text[] IS NULL OR r.source = ANY(%(source)s::text[]))
  AND (NOT %(unassigned)s OR r.unassigned)

-- name: stats_row_filters :fragment
-- The same filters on an incident `i`.
(%(status)s::incident_status[] IS NULL OR i.status = ANY(%(status)s::incident_status[]))
  AND (%(severity)s::incident_severity[] IS NULL OR i.severity = ANY(%(severity)s::incident_severity[]))
  AND (%(source)s::text[] IS NULL OR i.source = ANY(%(source)s::text[]))
  AND (NOT %(unassigned)s OR i.assignee_id IS NULL)

-- name: stats_link_filters :fragment
-- The same filters on a category link `c` (migration 29's copy of its incident's columns).
(%(status)s::incident_status[] IS NULL OR c.incident_status = ANY(%(status)s::incident_status[]))
  AND (%(severity)s::incident_severity[] IS NULL OR c.incident_severity = ANY(%(severity)s::incident_severity[]))
  AND (%(source)s::text[] IS NULL OR c.incident_source = ANY(%(source)s::text[]))
  AND (NOT %(unassigned)s OR c.incident_assignee_id IS NULL)

-- name: stats_link_range :fragment
-- The created_at range on a category link `c`.
(%(created_after)s::timestamptz IS NULL OR c.incident_created_at >= %(created_after)s)
  AND (%(created_before)s::timestamptz IS NULL OR c.incident_created_at < %(created_before)s)

-- name: stats_uncategorized :fragment
-- Whether no category filter is set (a constant: PERF: the plan keeps either the incidents' or
-- the category links' scans, never both).
%(category_id)s::bigint IS NULL

-- name: stats_done_wanted :fragment
-- Whether the status filter wants resolved or closed incidents at all (a constant: PERF: the
-- plan then skips a scan it would have filtered to nothing, as the active one does below).
(%(status)s::incident_status[] IS NULL OR %(status)s::incident_status[] && ARRAY['resolved', 'closed']::incident_status[])

-- name: stats_selection :fragment
-- The incidents matching the filters (status, severity, source, unassigned, category,
-- created_at range: the others are NULL), never read one by one in bulk. With a category, every
-- source below is its counterpart for the category: migration 29's rollups keyed by category,
-- and the category's links (which carry a copy of their incident's columns) for the incidents
-- (the plan keeps one of each pair: stats_uncategorized). Open and in-progress ones (`active`:
-- few, since incidents do not stay so) come from an index-only scan; resolved and closed ones
-- from the rollups, whose whole units inside the range stats_span (api/resources/analytics.py)
-- computes, and the incidents of the rest, read through an index-only scan:
-- * counts by day: the whole UTC days from days_from to before days_to (none if not days_any;
--   NULL: unbounded) and the incidents created in [day_edge_from, day_edge_to) and
--   [day_edge2_from, day_edge2_to), less than a day at either end;
-- * durations by month: the months from months_from to before months_to, corrected by the
--   incidents created in [month_edge_from, month_edge_to) and [month_edge2_from, month_edge2_to),
--   added (sign 1) or taken away (-1): each end is rounded to the nearest month, so each
--   correction is at most half a month.
-- `counted` has one row per (created_on, resolved_on, status, severity) with its count n;
-- `duration` one per (metric, severity, bucket lower bound) with its count n and total.
day_edge AS (
    SELECT i.created_at, i.resolved_at, i.status, i.severity
    FROM incidents i
    WHERE i.status IN ('resolved', 'closed') AND {:stats_row_filters} AND {:stats_done_wanted}
      AND {:stats_uncategorized}
      AND i.created_at >= %(day_edge_from)s::timestamptz AND i.created_at < %(day_edge_to)s::timestamptz
    UNION ALL
    SELECT i.created_at, i.resolved_at, i.status, i.severity
    FROM incidents i
    WHERE i.status IN ('resolved', 'closed') AND {:stats_row_filters} AND {:stats_done_wanted}
      AND {:stats_uncategorized}
      AND i.created_at >= %(day_edge2_from)s::timestamptz AND i.created_at < %(day_edge2_to)s::timestamptz
    UNION ALL
    SELECT c.incident_created_at, c.incident_resolved_at, c.incident_status, c.incident_severity
    FROM incident_categories c
    WHERE c.category_id = %(category_id)s AND c.incident_status IN ('resolved', 'closed')
      AND {:stats_link_filters} AND {:stats_done_wanted}
      AND c.incident_created_at >= %(day_edge_from)s::timestamptz AND c.incident_created_at < %(day_edge_to)s::timestamptz
    UNION ALL
    SELECT c.incident_created_at, c.incident_resolved_at, c.incident_status, c.incident_severity
    FROM incident_categories c
    WHERE c.category_id = %(category_id)s AND c.incident_status IN ('resolved', 'closed')
      AND {:stats_link_filters} AND {:stats_done_wanted}
      AND c.incident_created_at >= %(day_edge2_from)s::timestamptz AND c.incident_created_at < %(day_edge2_to)s::timestamptz
),
month_edge AS (
    SELECT %(month_edge_sign)s::int AS n, i.severity, i.ack_seconds, i.res_seconds
    FROM incidents i
    WHERE i.status IN ('resolved', 'closed') AND {:stats_row_filters} AND {:stats_done_wanted}
      AND {:stats_uncategorized}
      AND i.created_at >= %(month_edge_from)s::timestamptz AND i.created_at < %(month_edge_to)s::timestamptz
    UNION ALL
    SELECT %(month_edge2_sign)s::int, i.severity, i.ack_seconds, i.res_seconds
    FROM incidents i
    WHERE i.status IN ('resolved', 'closed') AND {:stats_row_filters} AND {:stats_done_wanted}
      AND {:stats_uncategorized}
      AND i.created_at >= %(month_edge2_from)s::timestamptz AND i.created_at < %(month_edge2_to)s::timestamptz
    UNION ALL
    SELECT %(month_edge_sign)s::int, c.incident_severity, c.incident_ack_seconds, c.incident_res_seconds
    FROM incident_categories c
    WHERE c.category_id = %(category_id)s AND c.incident_status IN ('resolved', 'closed')
      AND {:stats_link_filters} AND {:stats_done_wanted}
      AND c.incident_created_at >= %(month_edge_from)s::timestamptz AND c.incident_created_at < %(month_edge_to)s::timestamptz
    UNION ALL
    SELECT %(month_edge2_sign)s::int, c.incident_severity, c.incident_ack_seconds, c.incident_res_seconds
    FROM incident_categories c
    WHERE c.category_id = %(category_id)s AND c.incident_status IN ('resolved', 'closed')
      AND {:stats_link_filters} AND {:stats_done_wanted}
      AND c.incident_created_at >= %(month_edge2_from)s::timestamptz AND c.incident_created_at < %(month_edge2_to)s::timestamptz
),
active AS (
    SELECT i.created_at, i.status, i.severity, i.ack_seconds, i.assignee_id
    FROM incidents i
    WHERE i.status IN ('open', 'in_progress') AND {:incident_filters} AND {:stats_uncategorized}
      AND (%(status)s::incident_status[] IS NULL OR %(status)s::incident_status[] && ARRAY['open', 'in_progress']::incident_status[])
    UNION ALL
    SELECT c.incident_created_at, c.incident_status, c.incident_severity, c.incident_ack_seconds, c.incident_assignee_id
    FROM incident_categories c
    WHERE c.category_id = %(category_id)s AND c.incident_status IN ('open', 'in_progress')
      AND {:stats_link_filters} AND {:stats_link_range}
      AND (%(status)s::incident_status[] IS NULL OR %(status)s::incident_status[] && ARRAY['open', 'in_progress']::incident_status[])
),
counted AS (
    SELECT r.created_on, r.resolved_on, r.status, r.severity, r.n
    FROM incident_stats_days r
    WHERE %(days_any)s AND {:stats_rollup_filters} AND {:stats_uncategorized}
      AND (%(days_from)s::date IS NULL OR r.created_on >= %(days_from)s::date)
      AND (%(days_to)s::date IS NULL OR r.created_on < %(days_to)s::date)
    UNION ALL
    SELECT r.created_on, r.resolved_on, r.status, r.severity, r.n
    FROM incident_stats_category_days r
    WHERE r.category_id = %(category_id)s AND %(days_any)s AND {:stats_rollup_filters}
      AND (%(days_from)s::date IS NULL OR r.created_on >= %(days_from)s::date)
      AND (%(days_to)s::date IS NULL OR r.created_on < %(days_to)s::date)
    UNION ALL
    SELECT (e.created_at AT TIME ZONE 'UTC')::date, coalesce((e.resolved_at AT TIME ZONE 'UTC')::date, 'infinity'),
           e.status, e.severity, count(*)
    FROM day_edge e GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT CASE WHEN a.created_at >= w.at THEN (a.created_at AT TIME ZONE 'UTC')::date END, 'infinity'::date,
           a.status, a.severity, count(*)  -- the day only where the daily series needs it
    FROM active a, window_start w GROUP BY 1, 2, 3, 4
),
bounds AS (SELECT array_agg(lower ORDER BY lower) AS bounds FROM incident_stats_bounds),
duration AS (
    SELECT r.metric, r.severity, r.lower, r.n, r.total
    FROM incident_stats_durations r
    WHERE %(months_any)s AND {:stats_rollup_filters} AND {:stats_uncategorized}
      AND (%(months_from)s::date IS NULL OR r.created_on >= %(months_from)s::date)
      AND (%(months_to)s::date IS NULL OR r.created_on < %(months_to)s::date)
    UNION ALL
    SELECT r.metric, r.severity, r.lower, r.n, r.total
    FROM incident_stats_category_durations r
    WHERE r.category_id = %(category_id)s AND %(months_any)s AND {:stats_rollup_filters}
      AND (%(months_from)s::date IS NULL OR r.created_on >= %(months_from)s::date)
      AND (%(months_to)s::date IS NULL OR r.created_on < %(months_to)s::date)
    UNION ALL
    SELECT 'ack', e.severity, b.bounds[width_bucket(e.ack_seconds, b.bounds)], sum(e.n), sum(e.n * e.ack_seconds)::numeric
    FROM (SELECT n, severity, ack_seconds FROM month_edge UNION ALL SELECT 1, severity, ack_seconds FROM active) AS e,
         bounds b
    WHERE e.ack_seconds IS NOT NULL
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT 'res', e.severity, b.bounds[width_bucket(e.res_seconds, b.bounds)], sum(e.n), sum(e.n * e.res_seconds)::numeric
    FROM month_edge e, bounds b
    WHERE e.res_seconds IS NOT NULL
    GROUP BY 1, 2, 3
),
counts AS (
    SELECT status, severity, sum(n) AS n FROM counted GROUP BY status, severity
)

-- name: stats_percentiles :fragment
-- MTTA and MTTR figures (`metric`: one row per metric) from `bucket`: per metric and scope
-- (a severity or 'all'), each bucket's lower bound, count n, exact total and the count
-- `before` it, for the incidents matching the filters. The means are total / n; each exact
-- percentile finds the bucket holding its rank and reads the value, and the next one, from a
-- duration index (with a category, the one of its links, in the category's order), skipping
-- the matching entries before it within that bucket (PERF: the indexes cover the filters, so
-- that is an index-only scan of one bucket). Interpolation is
-- percentile_cont's: lower + (position - floor(position)) * (upper - lower), in float8.
summary AS (
    SELECT metric, scope, sum(n) AS n, (sum(total) / sum(n))::float8 AS mean
    FROM bucket GROUP BY metric, scope
),
rank AS (
    SELECT s.metric, s.scope, f.fraction, p.position, floor(p.position) AS first_row, ceil(p.position) AS second_row
    FROM summary s
    CROSS JOIN (VALUES (0.5::float8), (0.9::float8)) AS f(fraction)
    CROSS JOIN LATERAL (SELECT f.fraction * (s.n - 1)::float8 AS position) AS p
),
percentile AS (
    SELECT r.metric, r.scope, r.fraction,
           CASE WHEN r.second_row > r.first_row THEN v.pair[1] + (r.position - r.first_row) * (v.pair[2] - v.pair[1])
                ELSE v.pair[1] END AS value
    FROM rank r
    JOIN bucket b ON b.metric = r.metric AND b.scope = r.scope
                 AND r.first_row >= b.before AND r.first_row < b.before + b.n
    CROSS JOIN LATERAL (SELECT CASE
        WHEN %(category_id)s::bigint IS NOT NULL AND r.metric = 'ack' THEN ARRAY(
            SELECT c.incident_ack_seconds FROM incident_categories c
            WHERE c.category_id = %(category_id)s AND c.incident_ack_seconds >= b.lower
              AND {:stats_link_filters} AND {:stats_link_range}
              AND (r.scope = 'all' OR c.incident_severity::text = r.scope)
            ORDER BY c.incident_ack_seconds OFFSET r.first_row - b.before LIMIT 2)
        WHEN %(category_id)s::bigint IS NOT NULL THEN ARRAY(
            SELECT c.incident_res_seconds FROM incident_categories c
            WHERE c.category_id = %(category_id)s AND c.incident_res_seconds >= b.lower
              AND {:stats_link_filters} AND {:stats_link_range}
              AND (r.scope = 'all' OR c.incident_severity::text = r.scope)
            ORDER BY c.incident_res_seconds OFFSET r.first_row - b.before LIMIT 2)
        WHEN r.metric = 'ack' AND r.scope = 'all' THEN ARRAY(
            SELECT i.ack_seconds FROM incidents i WHERE i.ack_seconds >= b.lower AND {:incident_filters}
            ORDER BY i.ack_seconds OFFSET r.first_row - b.before LIMIT 2)
        WHEN r.metric = 'ack' THEN ARRAY(
            SELECT i.ack_seconds FROM incidents i
            WHERE i.severity = r.scope::incident_severity AND i.ack_seconds >= b.lower AND {:incident_filters}
            ORDER BY i.ack_seconds OFFSET r.first_row - b.before LIMIT 2)
        WHEN r.scope = 'all' THEN ARRAY(
            SELECT i.res_seconds FROM incidents i WHERE i.res_seconds >= b.lower AND {:incident_filters}
            ORDER BY i.res_seconds OFFSET r.first_row - b.before LIMIT 2)
        ELSE ARRAY(
            SELECT i.res_seconds FROM incidents i
            WHERE i.severity = r.scope::incident_severity AND i.res_seconds >= b.lower AND {:incident_filters}
            ORDER BY i.res_seconds OFFSET r.first_row - b.before LIMIT 2)
        END AS pair OFFSET 0) AS v  -- OFFSET 0: one lookup, not one for each use of `pair`
),
figures AS (
    SELECT m.metric, scope.scope, s.mean, p50.value AS p50, p90.value AS p90
    FROM (VALUES ('ack'), ('res')) AS m(metric)
    CROSS JOIN (SELECT 'all' UNION ALL SELECT unnest(enum_range(NULL::incident_severity))::text) AS scope(scope)
    LEFT JOIN summary s ON s.metric = m.metric AND s.scope = scope.scope
    LEFT JOIN percentile p50 ON p50.metric = m.metric AND p50.scope = scope.scope AND p50.fraction = 0.5
    LEFT JOIN percentile p90 ON p90.metric = m.metric AND p90.scope = scope.scope AND p90.fraction = 0.9
),
metric AS (
    SELECT a.metric, json_build_object('mean', a.mean, 'p50', a.p50, 'p90', a.p90, 'by_severity',
        (SELECT json_object_agg(f.scope, json_build_object('mean', f.mean, 'p50', f.p50, 'p90', f.p90)
                                ORDER BY f.scope::incident_severity)
         FROM figures f WHERE f.metric = a.metric AND f.scope <> 'all')) AS figures
    FROM figures a WHERE a.scope = 'all'
)

-- name: stats_document :fragment
-- The stats document from `counts` (status, severity, n), `metric`, `counted` and the days.
-- PERF: the daily series sums rollup rows (a day of every incident is ~40 rows), not incidents.
SELECT
    (SELECT json_object_agg(s.status, coalesce((SELECT sum(n) FROM counts c WHERE c.status = s.status), 0)
                            ORDER BY s.status)
     FROM unnest(enum_range(NULL::incident_status)) AS s(status)) AS by_status,
    (SELECT json_object_agg(s.severity, coalesce((SELECT sum(n) FROM counts c WHERE c.severity = s.severity), 0)
                            ORDER BY s.severity)
     FROM unnest(enum_range(NULL::incident_severity)) AS s(severity)) AS by_severity,
    (SELECT figures FROM metric WHERE metric = 'ack') AS mtta_seconds,
    (SELECT figures FROM metric WHERE metric = 'res') AS mttr_seconds,
    (SELECT coalesce(json_agg(json_build_object('user_id', u.id, 'username', u.username,
                                                'open', w.open, 'in_progress', w.in_progress)
                              ORDER BY w.open + w.in_progress DESC, u.id), '[]')
     FROM (SELECT assignee_id, count(*) FILTER (WHERE status = 'open') AS open,
                  count(*) FILTER (WHERE status = 'in_progress') AS in_progress
           FROM active WHERE assignee_id IS NOT NULL GROUP BY assignee_id) AS w
     JOIN users u ON u.id = w.assignee_id) AS workload,
    (SELECT json_agg(json_build_object('date', day.day, 'opened', coalesce(o.n, 0),
                                       'resolved', coalesce(r.n, 0)) ORDER BY day.day)
     FROM day
     LEFT JOIN (SELECT created_on AS day, sum(n) AS n FROM counted
                WHERE created_on >= (SELECT min(day) FROM day) GROUP BY 1) AS o ON o.day = day.day
     LEFT JOIN (SELECT resolved_on AS day, sum(n) AS n FROM counted
                WHERE resolved_on >= (SELECT min(day) FROM day) AND resolved_on < 'infinity'
                GROUP BY 1) AS r ON r.day = day.day) AS daily

-- name: incident_stats_all :one :custom_plan
-- incident_stats for every incident (no filter), the same figures without reading them all.
-- The durations come from migration 09's histogram (per severity, buckets 2 % wide, so an
-- exact percentile reads few index entries), the counts and days from incident_stats_rollup's
-- selection, with every filter NULL.
WITH {:stats_days},
{:stats_selection},
bucket AS (
    SELECT metric, severity::text AS scope, lower, n, total,
           sum(n) OVER (PARTITION BY metric, severity ORDER BY lower) - n AS before
    FROM incident_duration_buckets
    WHERE n > 0
    UNION ALL
    SELECT metric, 'all', lower, sum(n), sum(total),
           sum(sum(n)) OVER (PARTITION BY metric ORDER BY lower) - sum(n)
    FROM incident_duration_buckets
    WHERE n > 0
    GROUP BY metric, lower
),
{:stats_percentiles}
{:stats_document}

-- name: incident_stats_rollup :one :custom_plan
-- incident_stats for filters on status, severity, source, assignee_id=none, category and the
-- created_at range only (the others are NULL), without a pass over the matching incidents: see
-- stats_selection. PERF: the worst of them took 5.3 s through incident_stats at a million
-- incidents, and with a category 6.4 s (docs/decisions.md).
WITH {:stats_days},
{:stats_selection},
by_bucket AS (
    SELECT metric, severity, lower, sum(n) AS n, sum(total) AS total
    FROM duration GROUP BY metric, severity, lower HAVING sum(n) > 0
),
bucket AS (
    SELECT metric, severity::text AS scope, lower, n, total,
           sum(n) OVER (PARTITION BY metric, severity ORDER BY lower) - n AS before
    FROM by_bucket
    UNION ALL
    SELECT metric, 'all', lower, sum(n), sum(total),
           sum(sum(n)) OVER (PARTITION BY metric ORDER BY lower) - sum(n)
    FROM by_bucket
    GROUP BY metric, lower
),
{:stats_percentiles}
{:stats_document}

-- name: stats_dates_match_all :scalar
-- Whether the created_after/created_before filters (NULL: none) leave no incident out, so
-- that stats may take incident_stats_all. PERF: min and max from the created_at index.
SELECT coalesce(%(created_after)s::timestamptz IS NULL
                    OR %(created_after)s <= (SELECT min(created_at) FROM incidents), TRUE)
   AND coalesce(%(created_before)s::timestamptz IS NULL
                    OR %(created_before)s > (SELECT max(created_at) FROM incidents), TRUE)
