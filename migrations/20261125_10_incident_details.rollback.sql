CREATE OR REPLACE VIEW incident_details AS
SELECT i.id, i.title, i.description, i.status, i.severity, i.reporter_id, i.assignee_id,
       coalesce((SELECT json_agg(json_build_object('id', c.id, 'name', c.name) ORDER BY c.id)
                 FROM incident_categories ic JOIN categories c ON c.id = ic.category_id
                 WHERE ic.incident_id = i.id), '[]') AS categories,
       i.created_at, i.updated_at, i.acknowledged_at, i.resolved_at, i.resolution, i.version
FROM incidents i;
