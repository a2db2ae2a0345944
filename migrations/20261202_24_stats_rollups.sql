-- Filtered stats without a pass over the matching incidents: resolved and closed incidents
-- (the bulk, and the only ones that stop changing) are counted by a trigger into rollups keyed
-- by what the stats filters select on; open and in-progress ones are read exactly, from an
-- index that covers them; the durations come with indexes that can test the filters.
-- depends: 20261202_23_feed_after_turns

-- Coarser duration buckets than migration 09's (2^(1/8) apart, about 9 %): the rollup keeps
-- one row per month and filter value for each, so a finer grid would be as many rows as
-- durations. A bucket is named by its lower bound; -infinity takes negative durations.
CREATE TABLE incident_stats_bounds (lower float8 PRIMARY KEY);
INSERT INTO incident_stats_bounds
SELECT '-infinity' UNION SELECT round((2 ^ (k / 8.0))::numeric, 6)::float8 FROM generate_series(-80, 256) AS k;

-- Resolved and closed incidents by UTC day of creation and of resolution ('infinity': none).
CREATE TABLE incident_stats_days (
    created_on  date NOT NULL,
    resolved_on date NOT NULL,
    status      incident_status NOT NULL,
    severity    incident_severity NOT NULL,
    source      text NOT NULL,
    unassigned  boolean NOT NULL,
    n           bigint NOT NULL,
    PRIMARY KEY (created_on, resolved_on, status, severity, source, unassigned)
);

-- Their durations by month of creation (created_on: its first day) and bucket, with the
-- exact sum of each bucket's durations.
CREATE TABLE incident_stats_durations (
    metric     text NOT NULL CONSTRAINT incident_stats_durations_metric CHECK (metric IN ('ack', 'res')),
    created_on date NOT NULL,
    status     incident_status NOT NULL,
    severity   incident_severity NOT NULL,
    source     text NOT NULL,
    unassigned boolean NOT NULL,
    lower      float8 NOT NULL,
    n          bigint NOT NULL,
    total      numeric NOT NULL,
    PRIMARY KEY (metric, created_on, status, severity, source, unassigned, lower)
);

-- Takes OLD out of the rollups and puts NEW in, each only if resolved or closed, in key order
-- (two transactions never lock the same rows in opposite orders); what cancels out is no change.
CREATE FUNCTION incident_stats_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- PERF: one statement, not two (a trigger's statement costs ~0.1 ms to run)
    WITH days AS (
        INSERT INTO incident_stats_days AS d (created_on, resolved_on, status, severity, source, unassigned, n)
        SELECT (r.created_at AT TIME ZONE 'UTC')::date, coalesce((r.resolved_at AT TIME ZONE 'UTC')::date, 'infinity'),
               r.status, r.severity, r.source, r.unassigned, sum(r.n)
        FROM (VALUES (OLD.created_at, OLD.resolved_at, OLD.status, OLD.severity, OLD.source, OLD.assignee_id IS NULL, -1),
                     (NEW.created_at, NEW.resolved_at, NEW.status, NEW.severity, NEW.source, NEW.assignee_id IS NULL, 1))
             AS r(created_at, resolved_at, status, severity, source, unassigned, n)
        WHERE r.status IN ('resolved', 'closed')
        GROUP BY 1, 2, 3, 4, 5, 6
        HAVING sum(r.n) <> 0
        ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (created_on, resolved_on, status, severity, source, unassigned) DO UPDATE SET n = d.n + excluded.n
    )
    INSERT INTO incident_stats_durations AS h (metric, created_on, status, severity, source, unassigned, lower, n, total)
    SELECT r.metric, date_trunc('month', r.created_at AT TIME ZONE 'UTC')::date, r.status, r.severity, r.source,
           r.unassigned, bound.lower, sum(r.n), sum(r.n * r.seconds::numeric)
    FROM (VALUES ('ack', OLD.created_at, OLD.status, OLD.severity, OLD.source, OLD.assignee_id IS NULL, OLD.ack_seconds, -1),
                 ('res', OLD.created_at, OLD.status, OLD.severity, OLD.source, OLD.assignee_id IS NULL, OLD.res_seconds, -1),
                 ('ack', NEW.created_at, NEW.status, NEW.severity, NEW.source, NEW.assignee_id IS NULL, NEW.ack_seconds, 1),
                 ('res', NEW.created_at, NEW.status, NEW.severity, NEW.source, NEW.assignee_id IS NULL, NEW.res_seconds, 1))
         AS r(metric, created_at, status, severity, source, unassigned, seconds, n)
    CROSS JOIN LATERAL (SELECT lower FROM incident_stats_bounds WHERE lower <= r.seconds
                        ORDER BY lower DESC LIMIT 1) AS bound
    WHERE r.status IN ('resolved', 'closed') AND r.seconds IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6, 7
    HAVING sum(r.n) <> 0 OR sum(r.n * r.seconds::numeric) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (metric, created_on, status, severity, source, unassigned, lower)
        DO UPDATE SET n = h.n + excluded.n, total = h.total + excluded.total;
    RETURN NULL;
END
$$;
-- NOTE: a new incident is open, and opening or acknowledging one changes no rollup: the
-- trigger runs only when a resolved or closed incident appears, changes or goes.
CREATE TRIGGER incidents_stats_on_insert AFTER INSERT ON incidents
    FOR EACH ROW WHEN (NEW.status IN ('resolved', 'closed'))
    EXECUTE FUNCTION incident_stats_sync();
CREATE TRIGGER incidents_stats_on_update AFTER UPDATE ON incidents
    FOR EACH ROW WHEN ((OLD.status IN ('resolved', 'closed') OR NEW.status IN ('resolved', 'closed'))
                       AND (OLD.status, OLD.severity, OLD.source, OLD.assignee_id IS NULL, OLD.created_at,
                            OLD.acknowledged_at, OLD.resolved_at)
                           IS DISTINCT FROM (NEW.status, NEW.severity, NEW.source, NEW.assignee_id IS NULL,
                                             NEW.created_at, NEW.acknowledged_at, NEW.resolved_at))
    EXECUTE FUNCTION incident_stats_sync();
CREATE TRIGGER incidents_stats_on_delete AFTER DELETE ON incidents
    FOR EACH ROW WHEN (OLD.status IN ('resolved', 'closed'))
    EXECUTE FUNCTION incident_stats_sync();

-- Rebuilds the rollups from the incidents: after this migration, and after a bulk load with
-- the triggers disabled (bench/seed.py).
CREATE FUNCTION incident_stats_refill() RETURNS void LANGUAGE sql AS $$
    DELETE FROM incident_stats_days;
    DELETE FROM incident_stats_durations;
    INSERT INTO incident_stats_days (created_on, resolved_on, status, severity, source, unassigned, n)
    SELECT (created_at AT TIME ZONE 'UTC')::date, coalesce((resolved_at AT TIME ZONE 'UTC')::date, 'infinity'),
           status, severity, source, assignee_id IS NULL, count(*)
    FROM incidents
    WHERE status IN ('resolved', 'closed')
    GROUP BY 1, 2, 3, 4, 5, 6;
    INSERT INTO incident_stats_durations (metric, created_on, status, severity, source, unassigned, lower, n, total)
    SELECT d.metric, date_trunc('month', i.created_at AT TIME ZONE 'UTC')::date, i.status, i.severity, i.source,
           i.assignee_id IS NULL, b.bounds[width_bucket(d.seconds, b.bounds)], count(*), sum(d.seconds::numeric)
    FROM (SELECT array_agg(lower ORDER BY lower) AS bounds FROM incident_stats_bounds) AS b,
         incidents i,
         LATERAL (VALUES ('ack', i.ack_seconds), ('res', i.res_seconds)) AS d(metric, seconds)
    WHERE i.status IN ('resolved', 'closed') AND d.seconds IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6, 7;
$$;

CREATE FUNCTION incident_stats_empty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM incident_stats_days;
    DELETE FROM incident_stats_durations;
    RETURN NULL;
END
$$;
CREATE TRIGGER incidents_stats_on_truncate AFTER TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION incident_stats_empty();

-- PERF: the partial months at the ends of a created_at range, as an index-only scan.
CREATE INDEX incidents_done_stats_idx ON incidents (created_at)
    INCLUDE (status, severity, source, assignee_id, ack_seconds, res_seconds, resolved_at)
    WHERE status IN ('resolved', 'closed');

-- PERF: open and in-progress incidents, counted exactly, and the workload, as index-only
-- scans. It replaces two indexes over them, migration 06's (assignee_id) and migration 09's
-- workload index (which left unassigned ones out), so a new incident goes into one index
-- fewer than before.
DROP INDEX incidents_active_idx;
DROP INDEX incidents_workload_idx;
CREATE INDEX incidents_active_stats_idx ON incidents (assignee_id, status)
    INCLUDE (severity, source, created_at, ack_seconds)
    WHERE status IN ('open', 'in_progress');

-- PERF: an exact percentile reads the entries of one bucket in order and tests the filters on
-- each, without the table (these replace migration 09's duration indexes).
DROP INDEX incidents_ack_seconds_idx;
DROP INDEX incidents_severity_ack_seconds_idx;
DROP INDEX incidents_res_seconds_idx;
DROP INDEX incidents_severity_res_seconds_idx;
CREATE INDEX incidents_ack_stats_idx ON incidents (ack_seconds)
    INCLUDE (severity, status, source, assignee_id, created_at) WHERE ack_seconds IS NOT NULL;
CREATE INDEX incidents_severity_ack_stats_idx ON incidents (severity, ack_seconds)
    INCLUDE (status, source, assignee_id, created_at) WHERE ack_seconds IS NOT NULL;
CREATE INDEX incidents_res_stats_idx ON incidents (res_seconds)
    INCLUDE (severity, status, source, assignee_id, created_at) WHERE res_seconds IS NOT NULL;
CREATE INDEX incidents_severity_res_stats_idx ON incidents (severity, res_seconds)
    INCLUDE (status, source, assignee_id, created_at) WHERE res_seconds IS NOT NULL;

-- Counts by status and severity come from the rollups and the active incidents now: the index
-- migration 09 made for them would only cost writes.
DROP INDEX incidents_severity_status_idx;

DO $$ BEGIN PERFORM incident_stats_refill(); END $$;
