-- Incidents, their categories and comments.
-- A reported incident or a comment is never lost by deleting a user: reporter_id and
-- author_id are ON DELETE RESTRICT. Deleting an assignee unassigns; deleting a category
-- removes only its links.
-- depends: 20261124_02_categories
CREATE TYPE incident_status AS ENUM ('open', 'in_progress', 'resolved', 'closed');
CREATE TYPE incident_severity AS ENUM ('low', 'medium', 'high', 'critical');

CREATE TABLE incidents (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title           text NOT NULL
                    CONSTRAINT incidents_title_length CHECK (char_length(title) BETWEEN 1 AND 200 AND title ~ '\S'),
    description     text NOT NULL DEFAULT ''
                    CONSTRAINT incidents_description_length CHECK (char_length(description) <= 10000),
    status          incident_status NOT NULL DEFAULT 'open',
    severity        incident_severity NOT NULL DEFAULT 'medium',
    reporter_id     bigint NOT NULL REFERENCES users ON DELETE RESTRICT,
    assignee_id     bigint REFERENCES users ON DELETE SET NULL,
    resolution      text CONSTRAINT incidents_resolution_length CHECK (char_length(resolution) <= 10000),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    resolved_at     timestamptz,
    version         integer NOT NULL DEFAULT 1 CONSTRAINT incidents_version_positive CHECK (version > 0),
    CONSTRAINT incidents_acknowledged_once_left_open CHECK (status = 'open' OR acknowledged_at IS NOT NULL),
    CONSTRAINT incidents_resolved_at_when_resolved CHECK (status <> 'resolved' OR resolved_at IS NOT NULL),
    CONSTRAINT incidents_no_resolved_at_when_reopened
        CHECK (status NOT IN ('open', 'in_progress') OR resolved_at IS NULL)
);

-- Deactivated users cannot be assigned. FOR SHARE makes a concurrent deactivation wait.
CREATE FUNCTION incidents_require_active_assignee() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM users WHERE id = NEW.assignee_id AND active FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'assignee % is not an active user', NEW.assignee_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'incidents_assignee_active';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER incidents_assignee_active_on_insert BEFORE INSERT ON incidents
    FOR EACH ROW WHEN (NEW.assignee_id IS NOT NULL)
    EXECUTE FUNCTION incidents_require_active_assignee();
CREATE TRIGGER incidents_assignee_active_on_update BEFORE UPDATE OF assignee_id ON incidents
    FOR EACH ROW WHEN (NEW.assignee_id IS NOT NULL AND NEW.assignee_id IS DISTINCT FROM OLD.assignee_id)
    EXECUTE FUNCTION incidents_require_active_assignee();

CREATE TABLE incident_categories (
    incident_id bigint NOT NULL REFERENCES incidents ON DELETE CASCADE,
    category_id bigint NOT NULL REFERENCES categories ON DELETE CASCADE,
    PRIMARY KEY (incident_id, category_id)
);

CREATE TABLE comments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents ON DELETE CASCADE,
    author_id   bigint NOT NULL REFERENCES users ON DELETE RESTRICT,
    content     text NOT NULL
                CONSTRAINT comments_content_length CHECK (char_length(content) BETWEEN 1 AND 10000 AND content ~ '\S'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The incident as the API shows it: one place for its columns and its categories.
CREATE VIEW incident_details AS
SELECT i.id, i.title, i.description, i.status, i.severity, i.reporter_id, i.assignee_id,
       coalesce((SELECT json_agg(json_build_object('id', c.id, 'name', c.name) ORDER BY c.id)
                 FROM incident_categories ic JOIN categories c ON c.id = ic.category_id
                 WHERE ic.incident_id = i.id), '[]') AS categories,
       i.created_at, i.updated_at, i.acknowledged_at, i.resolved_at, i.resolution, i.version
FROM incidents i;
