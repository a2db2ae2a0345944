-- Incident analytics, in one round trip.

-- name: incident_stats :one
-- For the incidents matching the filters: counts by status and severity (every value, zeros
-- included); MTTA (created -> acknowledged) and MTTR (created -> resolved) in seconds as mean,
-- p50 and p90, overall and per severity (null where none qualify); open workload per
-- assignee, busiest first; opened and resolved per UTC day for the last `days` days.
-- PERF: the figures take one pass over the selection (the percentiles sort each severity's
-- durations and then all of them); workload and the daily series read only the rows they
-- need, through their own partial indexes.
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
    WHERE {incident_filters}
    GROUP BY GROUPING SETS ((i.severity), ())
),
overall AS (SELECT * FROM figures WHERE overall),
by_severity AS (
    SELECT s.severity, f.n, f.ack_mean, f.ack_p, f.res_mean, f.res_p
    FROM unnest(enum_range(NULL::incident_severity)) AS s(severity)
    LEFT JOIN figures f ON f.severity = s.severity AND NOT f.overall
),
day AS (
    SELECT (now() AT TIME ZONE 'UTC')::date - offs AS day
    FROM generate_series(0, %(days)s - 1) AS offs
),
window_start AS (SELECT (min(day)::timestamp AT TIME ZONE 'UTC') AS at FROM day)
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
    (SELECT coalesce(json_agg(json_build_object('user_id', u.id, 'username', u.username,
                                                'open', w.open, 'in_progress', w.in_progress)
                              ORDER BY w.open + w.in_progress DESC, u.id), '[]')
     FROM (SELECT i.assignee_id,
                  count(*) FILTER (WHERE i.status = 'open') AS open,
                  count(*) FILTER (WHERE i.status = 'in_progress') AS in_progress
           FROM incidents i
           WHERE {incident_filters}
             AND i.status IN ('open', 'in_progress') AND i.assignee_id IS NOT NULL
           GROUP BY i.assignee_id) AS w
     JOIN users u ON u.id = w.assignee_id) AS workload,
    (SELECT json_agg(json_build_object('date', day.day, 'opened', coalesce(o.n, 0),
                                       'resolved', coalesce(r.n, 0)) ORDER BY day.day)
     FROM day
     LEFT JOIN (SELECT (i.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
                FROM incidents i, window_start
                WHERE {incident_filters} AND i.created_at >= window_start.at
                GROUP BY 1) AS o ON o.day = day.day
     LEFT JOIN (SELECT (i.resolved_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
                FROM incidents i, window_start
                WHERE {incident_filters} AND i.resolved_at >= window_start.at
                GROUP BY 1) AS r ON r.day = day.day) AS daily
FROM overall
