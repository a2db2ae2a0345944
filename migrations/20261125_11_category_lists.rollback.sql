CREATE INDEX incident_categories_category_id_idx ON incident_categories (category_id, incident_id);
DROP INDEX incident_categories_category_created_idx;
DROP TRIGGER incidents_created_at_to_categories ON incidents;
DROP FUNCTION incidents_copy_created_at_to_categories();
DROP TRIGGER incident_categories_created_at ON incident_categories;
DROP FUNCTION incident_categories_copy_created_at();
ALTER TABLE incident_categories DROP COLUMN incident_created_at;
