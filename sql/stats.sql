-- Incident analytics, in one round trip.

-- name: incident_stats :one
-- For the incidents matching the filters: counts by status and severity (every value, zeros
-- included); MTTA (created -> acknowledged) and MTTR (created -> resolved) in seconds as mean,
-- p50 and p90, overall and per severity (null where none qualify); open workload per
-- assignee, busiest first; opened and resolved per UTC day for the last %(days)s days.
WITH sel AS (
    SELECT i.status, i.severity, i.assignee_id, i.created_at, i.acknowledged_at, i.resolved_at
    FROM incidents i
    WHERE {incident_filters}
),
durations AS (
    SELECT 'mtta' AS metric, severity, extract(epoch FROM acknowledged_at - created_at)::float8 AS seconds
    FROM sel WHERE acknowledged_at IS NOT NULL
    UNION ALL
    SELECT 'mttr', severity, extract(epoch FROM resolved_at - created_at)::float8
    FROM sel WHERE resolved_at IS NOT NULL
),
figures AS (
    SELECT metric, severity, GROUPING(severity) = 1 AS overall, avg(seconds) AS mean,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS p50,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds) AS p90
    FROM durations
    GROUP BY GROUPING SETS ((metric), (metric, severity))
),
mtt AS (
    SELECT m.metric,
           json_build_object('mean', o.mean, 'p50', o.p50, 'p90', o.p90, 'by_severity', (
               SELECT json_object_agg(s, json_build_object('mean', f.mean, 'p50', f.p50, 'p90', f.p90)
                                      ORDER BY s)
               FROM unnest(enum_range(NULL::incident_severity)) AS s
               LEFT JOIN figures f ON f.metric = m.metric AND NOT f.overall AND f.severity = s)) AS figure
    FROM (VALUES ('mtta'), ('mttr')) AS m(metric)
    LEFT JOIN figures o ON o.metric = m.metric AND o.overall
),
today AS (SELECT (now() AT TIME ZONE 'UTC')::date AS day)
SELECT
    (SELECT json_object_agg(s, coalesce(c.n, 0) ORDER BY s)
     FROM unnest(enum_range(NULL::incident_status)) AS s
     LEFT JOIN (SELECT status, count(*) AS n FROM sel GROUP BY status) AS c ON c.status = s) AS by_status,
    (SELECT json_object_agg(s, coalesce(c.n, 0) ORDER BY s)
     FROM unnest(enum_range(NULL::incident_severity)) AS s
     LEFT JOIN (SELECT severity, count(*) AS n FROM sel GROUP BY severity) AS c ON c.severity = s) AS by_severity,
    (SELECT figure FROM mtt WHERE metric = 'mtta') AS mtta_seconds,
    (SELECT figure FROM mtt WHERE metric = 'mttr') AS mttr_seconds,
    (SELECT coalesce(json_agg(json_build_object('user_id', u.id, 'username', u.username,
                                                'open', w.open, 'in_progress', w.in_progress)
                              ORDER BY w.open + w.in_progress DESC, u.id), '[]')
     FROM (SELECT assignee_id,
                  count(*) FILTER (WHERE status = 'open') AS open,
                  count(*) FILTER (WHERE status = 'in_progress') AS in_progress
           FROM sel
           WHERE assignee_id IS NOT NULL AND status IN ('open', 'in_progress')
           GROUP BY assignee_id) AS w
     JOIN users u ON u.id = w.assignee_id) AS workload,
    (SELECT json_agg(json_build_object('date', d.day, 'opened', coalesce(o.n, 0),
                                       'resolved', coalesce(r.n, 0)) ORDER BY d.day)
     FROM (SELECT (today.day - offs) AS day FROM today, generate_series(0, %(days)s - 1) AS offs) AS d
     LEFT JOIN (SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
                FROM sel GROUP BY 1) AS o ON o.day = d.day
     LEFT JOIN (SELECT (resolved_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
                FROM sel WHERE resolved_at IS NOT NULL GROUP BY 1) AS r ON r.day = d.day) AS daily
