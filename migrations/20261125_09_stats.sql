-- Unfiltered stats without reading every incident: durations as indexed columns, a histogram
-- of them kept by a trigger, and narrow indexes for the counts and the workload.
-- depends: 20261124_08_login_throttle

-- The durations behind MTTA and MTTR, in seconds, as the stats query has always computed them.
ALTER TABLE incidents
    ADD COLUMN ack_seconds float8 GENERATED ALWAYS AS (extract(epoch FROM acknowledged_at - created_at)::float8) STORED,
    ADD COLUMN res_seconds float8 GENERATED ALWAYS AS (extract(epoch FROM resolved_at - created_at)::float8) STORED;

-- PERF: an exact percentile reads at most a bucket's worth of entries from these, in order.
CREATE INDEX incidents_ack_seconds_idx ON incidents (ack_seconds) WHERE ack_seconds IS NOT NULL;
CREATE INDEX incidents_severity_ack_seconds_idx ON incidents (severity, ack_seconds) WHERE ack_seconds IS NOT NULL;
CREATE INDEX incidents_res_seconds_idx ON incidents (res_seconds) WHERE res_seconds IS NOT NULL;
CREATE INDEX incidents_severity_res_seconds_idx ON incidents (severity, res_seconds) WHERE res_seconds IS NOT NULL;

-- PERF: counts by status and severity as one index-only scan; a counter row instead would be
-- updated, and locked until commit, by every new incident. Severity leads: led by status, the
-- planner took it for `status=open&assignee_id=none` lists (a bitmap over every open incident,
-- 40-80 ms, instead of 0.6 ms reading the newest first).
CREATE INDEX incidents_severity_status_idx ON incidents (severity, status);

-- PERF: index-only scans (these counts, the workload, the daily series) read the heap for every
-- page not marked all-visible since the last vacuum: 40,000 new incidents took unfiltered stats
-- from 160 to 350 ms. So vacuum incidents after 1 % new or changed rows, not the default 20 %.
ALTER TABLE incidents SET (autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_vacuum_scale_factor = 0.01);

-- PERF: the open workload per assignee as an index-only scan.
CREATE INDEX incidents_workload_idx ON incidents (assignee_id, status)
    WHERE status IN ('open', 'in_progress') AND assignee_id IS NOT NULL;

-- Fixed bucket boundaries, 2^(1/32) apart (about 2 %) from 1 ms to 136 years; -infinity
-- takes negative and shorter durations. A bucket is named by its lower bound.
CREATE TABLE incident_duration_bounds (lower float8 PRIMARY KEY);
INSERT INTO incident_duration_bounds
SELECT '-infinity' UNION SELECT round((2 ^ (k / 32.0))::numeric, 6)::float8 FROM generate_series(-320, 1024) AS k;

-- How many durations of each metric and severity fall in each bucket, and their exact sum.
CREATE TABLE incident_duration_buckets (
    metric   text NOT NULL CONSTRAINT incident_duration_buckets_metric CHECK (metric IN ('ack', 'res')),
    severity incident_severity NOT NULL,
    lower    float8 NOT NULL,
    n        bigint NOT NULL,
    total    numeric NOT NULL,
    PRIMARY KEY (metric, severity, lower)
);

-- Adds NEW's durations and takes OLD's away, in key order (so two transactions never lock
-- the same buckets in opposite orders); a duration that stays in its bucket is no change.
CREATE FUNCTION incident_duration_buckets_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO incident_duration_buckets AS b (metric, severity, lower, n, total)
    SELECT d.metric, d.severity, bound.lower, sum(d.n), sum(d.n * d.exact)
    FROM (VALUES ('ack', OLD.severity, OLD.ack_seconds, extract(epoch FROM OLD.acknowledged_at - OLD.created_at), -1),
                 ('res', OLD.severity, OLD.res_seconds, extract(epoch FROM OLD.resolved_at - OLD.created_at), -1),
                 ('ack', NEW.severity, NEW.ack_seconds, extract(epoch FROM NEW.acknowledged_at - NEW.created_at), 1),
                 ('res', NEW.severity, NEW.res_seconds, extract(epoch FROM NEW.resolved_at - NEW.created_at), 1))
         AS d(metric, severity, seconds, exact, n)
    CROSS JOIN LATERAL (SELECT lower FROM incident_duration_bounds WHERE lower <= d.seconds
                        ORDER BY lower DESC LIMIT 1) AS bound
    WHERE d.seconds IS NOT NULL
    GROUP BY 1, 2, 3
    HAVING sum(d.n) <> 0 OR sum(d.n * d.exact) <> 0
    ORDER BY 1, 2, 3
    ON CONFLICT (metric, severity, lower) DO UPDATE SET n = b.n + excluded.n, total = b.total + excluded.total;
    RETURN NULL;
END
$$;
-- NOTE: new incidents have no durations, so creating one never fires this.
CREATE TRIGGER incidents_duration_buckets_on_insert AFTER INSERT ON incidents
    FOR EACH ROW WHEN (NEW.ack_seconds IS NOT NULL OR NEW.res_seconds IS NOT NULL)
    EXECUTE FUNCTION incident_duration_buckets_sync();
CREATE TRIGGER incidents_duration_buckets_on_update AFTER UPDATE ON incidents
    FOR EACH ROW WHEN (OLD.ack_seconds IS DISTINCT FROM NEW.ack_seconds
                       OR OLD.res_seconds IS DISTINCT FROM NEW.res_seconds
                       OR (OLD.severity <> NEW.severity AND (NEW.ack_seconds IS NOT NULL OR NEW.res_seconds IS NOT NULL)))
    EXECUTE FUNCTION incident_duration_buckets_sync();
CREATE TRIGGER incidents_duration_buckets_on_delete AFTER DELETE ON incidents
    FOR EACH ROW WHEN (OLD.ack_seconds IS NOT NULL OR OLD.res_seconds IS NOT NULL)
    EXECUTE FUNCTION incident_duration_buckets_sync();

-- Rebuilds the histogram from the incidents: after this migration, and after a bulk load
-- with the triggers disabled (bench/seed.py).
CREATE FUNCTION incident_duration_buckets_refill() RETURNS void LANGUAGE sql AS $$
    DELETE FROM incident_duration_buckets;
    INSERT INTO incident_duration_buckets (metric, severity, lower, n, total)
    SELECT d.metric, d.severity, b.bounds[width_bucket(d.seconds, b.bounds)], count(*), sum(d.exact)
    FROM (SELECT array_agg(lower ORDER BY lower) AS bounds FROM incident_duration_bounds) AS b,
         incidents i,
         LATERAL (VALUES ('ack', i.severity, i.ack_seconds, extract(epoch FROM i.acknowledged_at - i.created_at)),
                         ('res', i.severity, i.res_seconds, extract(epoch FROM i.resolved_at - i.created_at)))
             AS d(metric, severity, seconds, exact)
    WHERE d.seconds IS NOT NULL
    GROUP BY 1, 2, 3;
$$;

CREATE FUNCTION incident_duration_buckets_empty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM incident_duration_buckets;
    RETURN NULL;
END
$$;
CREATE TRIGGER incidents_duration_buckets_on_truncate AFTER TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION incident_duration_buckets_empty();

DO $$ BEGIN PERFORM incident_duration_buckets_refill(); END $$;
