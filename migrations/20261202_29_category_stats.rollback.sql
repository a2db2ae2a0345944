DROP INDEX incident_categories_done_stats_idx;
DROP INDEX incident_categories_res_stats_idx;
DROP INDEX incident_categories_ack_stats_idx;
DROP INDEX incident_categories_active_stats_idx;
DROP TRIGGER incident_categories_stats_on_truncate ON incident_categories;
DROP FUNCTION incident_stats_category_empty();
DROP FUNCTION incident_stats_category_refill();
DROP TRIGGER incidents_stats_to_categories ON incidents;
DROP FUNCTION incident_categories_follow();
DROP TRIGGER incident_categories_stats_on_delete ON incident_categories;
DROP FUNCTION incident_stats_category_remove();
DROP TRIGGER incident_categories_stats_on_insert ON incident_categories;
DROP FUNCTION incident_stats_category_add();
DROP TRIGGER incident_categories_copy ON incident_categories;
DROP FUNCTION incident_categories_copy_incident();
DROP TABLE incident_stats_category_durations;
DROP TABLE incident_stats_category_days;
ALTER TABLE incident_categories
    DROP COLUMN incident_status,
    DROP COLUMN incident_severity,
    DROP COLUMN incident_source,
    DROP COLUMN incident_assignee_id,
    DROP COLUMN incident_resolved_at,
    DROP COLUMN incident_ack_seconds,
    DROP COLUMN incident_res_seconds;

-- migration 11's copy of created_at, as it was
CREATE FUNCTION incident_categories_copy_created_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.incident_created_at := (SELECT created_at FROM incidents WHERE id = NEW.incident_id);
    RETURN NEW;
END $$;
CREATE TRIGGER incident_categories_created_at BEFORE INSERT OR UPDATE ON incident_categories
    FOR EACH ROW EXECUTE FUNCTION incident_categories_copy_created_at();

CREATE FUNCTION incidents_copy_created_at_to_categories() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE incident_categories SET incident_created_at = NEW.created_at WHERE incident_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER incidents_created_at_to_categories AFTER UPDATE OF created_at ON incidents
    FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION incidents_copy_created_at_to_categories();
