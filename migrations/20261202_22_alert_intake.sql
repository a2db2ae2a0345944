-- Alert intake: incidents opened by monitoring systems (POST /alerts, POST /alerts/alertmanager)
-- carry where they came from and the sender's deduplication key. At most one incident per
-- source and key is open or in progress at a time: the unique partial index is what makes
-- concurrent notifications of one new key create one incident (INSERT ... ON CONFLICT).
-- alert_count and last_alert_at count the notifications that found the incident open; they are
-- bookkeeping, not part of the API's representation (see docs/decisions.md).
-- PERF: columns with constant defaults are added without rewriting the table; incidents
-- reported through the API (no dedup_key) get no entry in any of its indexes.
-- depends: 20261202_21_webhooks
ALTER TABLE incidents
    ADD COLUMN source text NOT NULL DEFAULT 'api'
        CONSTRAINT incidents_source_known CHECK (source IN ('api', 'alerts', 'alertmanager')),
    ADD COLUMN dedup_key text
        CONSTRAINT incidents_dedup_key_length CHECK (char_length(dedup_key) BETWEEN 1 AND 512),
    ADD COLUMN alert_count integer NOT NULL DEFAULT 0
        CONSTRAINT incidents_alert_count_not_negative CHECK (alert_count >= 0),
    ADD COLUMN last_alert_at timestamptz;

CREATE UNIQUE INDEX incidents_open_dedup_key ON incidents (source, dedup_key)
    WHERE dedup_key IS NOT NULL AND status IN ('open', 'in_progress');
-- The dedup_key= and source= filters of the lists. PERF: without them, a list of a rare source
-- read every incident (a parallel scan: 76-91 ms at 300,000 incidents); with them 0.1-0.2 ms,
-- and 0.05 ms for a dedup_key. Neither holds incidents reported through the API.
CREATE INDEX incidents_dedup_key_idx ON incidents (dedup_key) WHERE dedup_key IS NOT NULL;
CREATE INDEX incidents_source_idx ON incidents (source, created_at, id) WHERE source <> 'api';

-- New columns of a view go last.
CREATE OR REPLACE VIEW incident_details AS
SELECT i.id, i.title, i.description, i.status, i.severity, i.reporter_id, i.assignee_id,
       coalesce((SELECT json_agg(json_build_object('id', ic.category_id,
                                                   'name', (SELECT c.name FROM categories c WHERE c.id = ic.category_id))
                                 ORDER BY ic.category_id)
                 FROM incident_categories ic
                 WHERE ic.incident_id = i.id), '[]') AS categories,
       i.created_at, i.updated_at, i.acknowledged_at, i.resolved_at, i.resolution, i.version,
       i.dedup_key, i.source
FROM incidents i;
