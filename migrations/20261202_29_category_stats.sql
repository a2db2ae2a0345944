-- Stats filtered by category without a pass over the category's incidents: migration 24's
-- rollups keyed by category as well, kept from a copy of what the stats filter on and measure
-- that each category link carries (it carried created_at since migration 11), so a link is
-- counted by its own columns and a percentile's bucket is read in the category's own order.
-- depends: 20261202_28_search_overflow

ALTER TABLE incident_categories
    ADD COLUMN incident_status      incident_status,
    ADD COLUMN incident_severity    incident_severity,
    ADD COLUMN incident_source      text,
    ADD COLUMN incident_assignee_id bigint,
    ADD COLUMN incident_resolved_at timestamptz,
    ADD COLUMN incident_ack_seconds float8,
    ADD COLUMN incident_res_seconds float8;
UPDATE incident_categories c
SET incident_status = i.status, incident_severity = i.severity, incident_source = i.source,
    incident_assignee_id = i.assignee_id, incident_resolved_at = i.resolved_at,
    incident_ack_seconds = i.ack_seconds, incident_res_seconds = i.res_seconds
FROM incidents i WHERE i.id = c.incident_id;
ALTER TABLE incident_categories
    ALTER COLUMN incident_status SET NOT NULL,
    ALTER COLUMN incident_severity SET NOT NULL,
    ALTER COLUMN incident_source SET NOT NULL;

-- Resolved and closed incidents per category, as incident_stats_days and
-- incident_stats_durations count them all.
CREATE TABLE incident_stats_category_days (
    category_id bigint NOT NULL,
    created_on  date NOT NULL,
    resolved_on date NOT NULL,
    status      incident_status NOT NULL,
    severity    incident_severity NOT NULL,
    source      text NOT NULL,
    unassigned  boolean NOT NULL,
    n           bigint NOT NULL,
    PRIMARY KEY (category_id, created_on, resolved_on, status, severity, source, unassigned)
);
CREATE TABLE incident_stats_category_durations (
    category_id bigint NOT NULL,
    metric      text NOT NULL CONSTRAINT incident_stats_category_durations_metric CHECK (metric IN ('ack', 'res')),
    created_on  date NOT NULL,
    status      incident_status NOT NULL,
    severity    incident_severity NOT NULL,
    source      text NOT NULL,
    unassigned  boolean NOT NULL,
    lower       float8 NOT NULL,
    n           bigint NOT NULL,
    total       numeric NOT NULL,
    PRIMARY KEY (category_id, metric, created_on, status, severity, source, unassigned, lower)
);

-- A new link copies its incident, read under a share lock: a concurrent change of the
-- incident either finishes first (and the copy is its result) or waits for the link and then
-- updates it (incident_categories_follow).
DROP TRIGGER incident_categories_created_at ON incident_categories;
DROP FUNCTION incident_categories_copy_created_at();
CREATE FUNCTION incident_categories_copy_incident() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT i.created_at, i.status, i.severity, i.source, i.assignee_id, i.resolved_at, i.ack_seconds, i.res_seconds
    INTO NEW.incident_created_at, NEW.incident_status, NEW.incident_severity, NEW.incident_source,
         NEW.incident_assignee_id, NEW.incident_resolved_at, NEW.incident_ack_seconds, NEW.incident_res_seconds
    FROM incidents i WHERE i.id = NEW.incident_id FOR SHARE;
    RETURN NEW;
END $$;
CREATE TRIGGER incident_categories_copy BEFORE INSERT OR UPDATE OF incident_id ON incident_categories
    FOR EACH ROW EXECUTE FUNCTION incident_categories_copy_incident();

-- Adds a resolved or closed incident's new link to its category's rollups.
CREATE FUNCTION incident_stats_category_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- PERF: one statement, not two
    WITH days AS (
        INSERT INTO incident_stats_category_days AS d
            (category_id, created_on, resolved_on, status, severity, source, unassigned, n)
        VALUES (NEW.category_id, (NEW.incident_created_at AT TIME ZONE 'UTC')::date,
                coalesce((NEW.incident_resolved_at AT TIME ZONE 'UTC')::date, 'infinity'),
                NEW.incident_status, NEW.incident_severity, NEW.incident_source, NEW.incident_assignee_id IS NULL, 1)
        ON CONFLICT (category_id, created_on, resolved_on, status, severity, source, unassigned)
            DO UPDATE SET n = d.n + 1
    )
    INSERT INTO incident_stats_category_durations AS h
        (category_id, metric, created_on, status, severity, source, unassigned, lower, n, total)
    SELECT NEW.category_id, r.metric, date_trunc('month', NEW.incident_created_at AT TIME ZONE 'UTC')::date,
           NEW.incident_status, NEW.incident_severity, NEW.incident_source, NEW.incident_assignee_id IS NULL,
           bound.lower, 1, r.seconds::numeric
    FROM (VALUES ('ack', NEW.incident_ack_seconds), ('res', NEW.incident_res_seconds)) AS r(metric, seconds)
    CROSS JOIN LATERAL (SELECT lower FROM incident_stats_bounds WHERE lower <= r.seconds
                        ORDER BY lower DESC LIMIT 1) AS bound
    WHERE r.seconds IS NOT NULL
    ORDER BY 2
    ON CONFLICT (category_id, metric, created_on, status, severity, source, unassigned, lower)
        DO UPDATE SET n = h.n + 1, total = h.total + excluded.total;
    RETURN NULL;
END $$;
-- NOTE: a new incident is open: linking it to its categories changes no rollup.
CREATE TRIGGER incident_categories_stats_on_insert AFTER INSERT ON incident_categories
    FOR EACH ROW WHEN (NEW.incident_status IN ('resolved', 'closed'))
    EXECUTE FUNCTION incident_stats_category_add();

-- Takes removed links of resolved and closed incidents out of their categories' rollups, in
-- key order, once per statement: a deleted category's 140,000 links are one aggregate, not
-- 140,000 upserts. A deleted category's rows go altogether.
CREATE FUNCTION incident_stats_category_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- PERF: every change of an incident's categories deletes, mostly no link or an open one's
    IF NOT EXISTS (SELECT FROM gone WHERE incident_status IN ('resolved', 'closed')) THEN
        RETURN NULL;  -- (a deleted category of open incidents only leaves rows of zeros)
    END IF;
    -- PERF: one statement, not four (a link deleted with its incident runs it too)
    WITH deleted AS (
        SELECT DISTINCT g.category_id FROM gone g
        WHERE NOT EXISTS (SELECT FROM categories c WHERE c.id = g.category_id)
    ), deleted_days AS (
        DELETE FROM incident_stats_category_days WHERE category_id IN (SELECT category_id FROM deleted)
    ), deleted_durations AS (
        DELETE FROM incident_stats_category_durations WHERE category_id IN (SELECT category_id FROM deleted)
    ), kept AS (
        SELECT g.* FROM gone g
        WHERE g.incident_status IN ('resolved', 'closed') AND g.category_id NOT IN (SELECT category_id FROM deleted)
    ), days AS (
        INSERT INTO incident_stats_category_days AS d
            (category_id, created_on, resolved_on, status, severity, source, unassigned, n)
        SELECT category_id, (incident_created_at AT TIME ZONE 'UTC')::date,
               coalesce((incident_resolved_at AT TIME ZONE 'UTC')::date, 'infinity'),
               incident_status, incident_severity, incident_source, incident_assignee_id IS NULL, -count(*)
        FROM kept
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        ORDER BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (category_id, created_on, resolved_on, status, severity, source, unassigned)
            DO UPDATE SET n = d.n + excluded.n
    )
    INSERT INTO incident_stats_category_durations AS h
        (category_id, metric, created_on, status, severity, source, unassigned, lower, n, total)
    SELECT k.category_id, r.metric, date_trunc('month', k.incident_created_at AT TIME ZONE 'UTC')::date,
           k.incident_status, k.incident_severity, k.incident_source, k.incident_assignee_id IS NULL,
           b.bounds[width_bucket(r.seconds, b.bounds)], -count(*), -sum(r.seconds::numeric)
    FROM (SELECT array_agg(lower ORDER BY lower) AS bounds FROM incident_stats_bounds) AS b,
         kept k,
         LATERAL (VALUES ('ack', k.incident_ack_seconds), ('res', k.incident_res_seconds)) AS r(metric, seconds)
    WHERE r.seconds IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT (category_id, metric, created_on, status, severity, source, unassigned, lower)
        DO UPDATE SET n = h.n + excluded.n, total = h.total + excluded.total;
    RETURN NULL;
END $$;
CREATE TRIGGER incident_categories_stats_on_delete AFTER DELETE ON incident_categories
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
    EXECUTE FUNCTION incident_stats_category_remove();

-- An incident's change reaches its links' copies and moves them between their categories'
-- rollup rows in one statement, in key order. The links are updated first: a link being
-- deleted at once (its category, say) is waited for and then left out.
DROP TRIGGER incidents_created_at_to_categories ON incidents;
DROP FUNCTION incidents_copy_created_at_to_categories();
CREATE FUNCTION incident_categories_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- PERF: one statement, not three (a trigger's statement costs ~0.1 ms to run)
    WITH linked AS (
        UPDATE incident_categories
        SET incident_created_at = NEW.created_at, incident_status = NEW.status, incident_severity = NEW.severity,
            incident_source = NEW.source, incident_assignee_id = NEW.assignee_id,
            incident_resolved_at = NEW.resolved_at, incident_ack_seconds = NEW.ack_seconds,
            incident_res_seconds = NEW.res_seconds
        WHERE incident_id = NEW.id
        RETURNING category_id
    ), days AS (
        INSERT INTO incident_stats_category_days AS d
            (category_id, created_on, resolved_on, status, severity, source, unassigned, n)
        SELECT l.category_id, (r.created_at AT TIME ZONE 'UTC')::date,
               coalesce((r.resolved_at AT TIME ZONE 'UTC')::date, 'infinity'),
               r.status, r.severity, r.source, r.unassigned, sum(r.n)
        FROM linked l,
             (VALUES (OLD.created_at, OLD.resolved_at, OLD.status, OLD.severity, OLD.source, OLD.assignee_id IS NULL, -1),
                     (NEW.created_at, NEW.resolved_at, NEW.status, NEW.severity, NEW.source, NEW.assignee_id IS NULL, 1))
             AS r(created_at, resolved_at, status, severity, source, unassigned, n)
        WHERE r.status IN ('resolved', 'closed')
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        HAVING sum(r.n) <> 0
        ORDER BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (category_id, created_on, resolved_on, status, severity, source, unassigned)
            DO UPDATE SET n = d.n + excluded.n
    )
    INSERT INTO incident_stats_category_durations AS h
        (category_id, metric, created_on, status, severity, source, unassigned, lower, n, total)
    SELECT l.category_id, r.metric, date_trunc('month', r.created_at AT TIME ZONE 'UTC')::date, r.status,
           r.severity, r.source, r.unassigned, bound.lower, sum(r.n), sum(r.n * r.seconds::numeric)
    FROM linked l,
         (VALUES ('ack', OLD.created_at, OLD.status, OLD.severity, OLD.source, OLD.assignee_id IS NULL, OLD.ack_seconds, -1),
                 ('res', OLD.created_at, OLD.status, OLD.severity, OLD.source, OLD.assignee_id IS NULL, OLD.res_seconds, -1),
                 ('ack', NEW.created_at, NEW.status, NEW.severity, NEW.source, NEW.assignee_id IS NULL, NEW.ack_seconds, 1),
                 ('res', NEW.created_at, NEW.status, NEW.severity, NEW.source, NEW.assignee_id IS NULL, NEW.res_seconds, 1))
         AS r(metric, created_at, status, severity, source, unassigned, seconds, n)
    CROSS JOIN LATERAL (SELECT lower FROM incident_stats_bounds WHERE lower <= r.seconds
                        ORDER BY lower DESC LIMIT 1) AS bound
    WHERE r.status IN ('resolved', 'closed') AND r.seconds IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    HAVING sum(r.n) <> 0 OR sum(r.n * r.seconds::numeric) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT (category_id, metric, created_on, status, severity, source, unassigned, lower)
        DO UPDATE SET n = h.n + excluded.n, total = h.total + excluded.total;
    RETURN NULL;
END $$;
CREATE TRIGGER incidents_stats_to_categories AFTER UPDATE ON incidents
    FOR EACH ROW WHEN ((OLD.created_at, OLD.status, OLD.severity, OLD.source, OLD.assignee_id, OLD.resolved_at,
                        OLD.ack_seconds, OLD.res_seconds)
                       IS DISTINCT FROM (NEW.created_at, NEW.status, NEW.severity, NEW.source, NEW.assignee_id,
                                         NEW.resolved_at, NEW.ack_seconds, NEW.res_seconds))
    EXECUTE FUNCTION incident_categories_follow();

-- Rebuilds the category rollups from the links' copies: after this migration, and after a
-- bulk load with the triggers disabled (bench/seed.py, which writes the copies itself).
CREATE FUNCTION incident_stats_category_refill() RETURNS void LANGUAGE sql AS $$
    DELETE FROM incident_stats_category_days;
    DELETE FROM incident_stats_category_durations;
    INSERT INTO incident_stats_category_days (category_id, created_on, resolved_on, status, severity, source, unassigned, n)
    SELECT category_id, (incident_created_at AT TIME ZONE 'UTC')::date,
           coalesce((incident_resolved_at AT TIME ZONE 'UTC')::date, 'infinity'),
           incident_status, incident_severity, incident_source, incident_assignee_id IS NULL, count(*)
    FROM incident_categories
    WHERE incident_status IN ('resolved', 'closed')
    GROUP BY 1, 2, 3, 4, 5, 6, 7;
    INSERT INTO incident_stats_category_durations
        (category_id, metric, created_on, status, severity, source, unassigned, lower, n, total)
    SELECT c.category_id, d.metric, date_trunc('month', c.incident_created_at AT TIME ZONE 'UTC')::date,
           c.incident_status, c.incident_severity, c.incident_source, c.incident_assignee_id IS NULL,
           b.bounds[width_bucket(d.seconds, b.bounds)], count(*), sum(d.seconds::numeric)
    FROM (SELECT array_agg(lower ORDER BY lower) AS bounds FROM incident_stats_bounds) AS b,
         incident_categories c,
         LATERAL (VALUES ('ack', c.incident_ack_seconds), ('res', c.incident_res_seconds)) AS d(metric, seconds)
    WHERE c.incident_status IN ('resolved', 'closed') AND d.seconds IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
$$;

CREATE FUNCTION incident_stats_category_empty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM incident_stats_category_days;
    DELETE FROM incident_stats_category_durations;
    RETURN NULL;
END $$;
CREATE TRIGGER incident_categories_stats_on_truncate AFTER TRUNCATE ON incident_categories
    FOR EACH STATEMENT EXECUTE FUNCTION incident_stats_category_empty();

-- PERF: a category's open and in-progress incidents, counted exactly, and their workload, as
-- an index-only scan (incidents_active_stats_idx for the links).
CREATE INDEX incident_categories_active_stats_idx ON incident_categories (category_id, incident_status)
    INCLUDE (incident_severity, incident_source, incident_assignee_id, incident_created_at, incident_ack_seconds)
    WHERE incident_status IN ('open', 'in_progress');

-- PERF: a category's exact percentile reads the entries of one bucket in the category's order
-- and tests the filters on each, without the table.
CREATE INDEX incident_categories_ack_stats_idx ON incident_categories (category_id, incident_ack_seconds)
    INCLUDE (incident_severity, incident_status, incident_source, incident_assignee_id, incident_created_at)
    WHERE incident_ack_seconds IS NOT NULL;
CREATE INDEX incident_categories_res_stats_idx ON incident_categories (category_id, incident_res_seconds)
    INCLUDE (incident_severity, incident_status, incident_source, incident_assignee_id, incident_created_at)
    WHERE incident_res_seconds IS NOT NULL;

-- PERF: the partial days and months at the ends of a created_at range within a category, as
-- an index-only scan (incidents_done_stats_idx for the links).
CREATE INDEX incident_categories_done_stats_idx ON incident_categories (category_id, incident_created_at)
    INCLUDE (incident_status, incident_severity, incident_source, incident_assignee_id, incident_resolved_at,
             incident_ack_seconds, incident_res_seconds)
    WHERE incident_status IN ('resolved', 'closed');

DO $$ BEGIN PERFORM incident_stats_category_refill(); END $$;
