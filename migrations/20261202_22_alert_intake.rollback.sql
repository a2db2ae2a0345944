-- A view cannot drop columns with CREATE OR REPLACE.
DROP VIEW incident_details;
CREATE VIEW incident_details AS
SELECT i.id, i.title, i.description, i.status, i.severity, i.reporter_id, i.assignee_id,
       coalesce((SELECT json_agg(json_build_object('id', ic.category_id,
                                                   'name', (SELECT c.name FROM categories c WHERE c.id = ic.category_id))
                                 ORDER BY ic.category_id)
                 FROM incident_categories ic
                 WHERE ic.incident_id = i.id), '[]') AS categories,
       i.created_at, i.updated_at, i.acknowledged_at, i.resolved_at, i.resolution, i.version
FROM incidents i;
DROP INDEX incidents_source_idx;
DROP INDEX incidents_dedup_key_idx;
DROP INDEX incidents_open_dedup_key;
ALTER TABLE incidents DROP COLUMN last_alert_at, DROP COLUMN alert_count, DROP COLUMN dedup_key,
    DROP COLUMN source;
