-- Secondary indexes for the list, search and stats queries; bench/ measures each one.
-- depends: 20261124_05_search
CREATE INDEX incidents_reporter_id_idx ON incidents (reporter_id);
CREATE INDEX incidents_assignee_id_idx ON incidents (assignee_id);
CREATE INDEX incident_categories_category_id_idx ON incident_categories (category_id, incident_id);
CREATE INDEX comments_author_id_idx ON comments (author_id);
