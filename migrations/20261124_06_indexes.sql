-- Every secondary index, in one migration, so that `make bench` can measure each query with
-- and without them (bench/results/explain.md says what each index is worth).
-- depends: 20261124_05_search

-- Foreign keys: the checks behind ON DELETE RESTRICT / CASCADE / SET NULL on users.
CREATE INDEX incidents_reporter_id_idx ON incidents (reporter_id);
CREATE INDEX incidents_assignee_id_idx ON incidents (assignee_id);
CREATE INDEX comments_author_id_idx ON comments (author_id);
CREATE INDEX incident_history_actor_id_idx ON incident_history (actor_id);

-- Lists in the order they are read.
CREATE INDEX incident_categories_category_id_idx ON incident_categories (category_id, incident_id);
CREATE INDEX comments_incident_id_idx ON comments (incident_id, created_at, id);
CREATE INDEX incident_history_incident_id_idx ON incident_history (incident_id, id);
CREATE INDEX follows_followee_id_idx ON follows (followee_id, follower_id);
CREATE INDEX notifications_user_id_idx ON notifications (user_id, id DESC);

-- Search.
CREATE INDEX incidents_search_idx ON incidents USING gin (search_vector);
