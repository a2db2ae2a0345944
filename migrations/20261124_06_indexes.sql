-- Every secondary index, in one migration, so that `make bench` can measure each query with
-- and without them (bench/results/explain.md says what each index is worth).
-- depends: 20261124_05_search

-- Incident lists in their sort orders (either direction), and created_after/before ranges.
CREATE INDEX incidents_created_at_idx ON incidents (created_at, id);
CREATE INDEX incidents_updated_at_idx ON incidents (updated_at, id);
CREATE INDEX incidents_severity_idx ON incidents (severity, id);

-- A user's incidents, newest first; they also serve the foreign-key checks on users.
CREATE INDEX incidents_reporter_id_idx ON incidents (reporter_id, created_at, id);
CREATE INDEX incidents_assignee_id_idx ON incidents (assignee_id, created_at, id);

-- Stats: open workload per assignee, and resolutions per day.
CREATE INDEX incidents_active_idx ON incidents (assignee_id) WHERE status IN ('open', 'in_progress');
CREATE INDEX incidents_resolved_at_idx ON incidents (resolved_at) WHERE resolved_at IS NOT NULL;

-- Foreign keys: the checks behind ON DELETE RESTRICT / CASCADE on users and incidents.
CREATE INDEX comments_author_id_idx ON comments (author_id);
CREATE INDEX incident_history_actor_id_idx ON incident_history (actor_id);
CREATE INDEX notifications_actor_id_idx ON notifications (actor_id);
CREATE INDEX notifications_incident_id_idx ON notifications (incident_id);

-- Lists in the order they are read.
CREATE INDEX incident_categories_category_id_idx ON incident_categories (category_id, incident_id);
CREATE INDEX comments_incident_id_idx ON comments (incident_id, created_at, id);
CREATE INDEX incident_history_incident_id_idx ON incident_history (incident_id, id);
CREATE INDEX follows_followee_id_idx ON follows (followee_id, follower_id);
CREATE INDEX notifications_user_id_idx ON notifications (user_id, id DESC);

-- Search.
CREATE INDEX incidents_search_idx ON incidents USING gin (search_vector);
