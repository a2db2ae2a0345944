-- Full-text search over title (weight A), description (B) and comments (C).
-- comments_vector grows by one comment at a time (comments are never edited or deleted on
-- their own); search_vector is generated from it and the incident's own text.
-- depends: 20261124_04_lifecycle
ALTER TABLE incidents ADD COLUMN comments_vector tsvector NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', title), 'A')
    || setweight(to_tsvector('english', description), 'B')
    || comments_vector
) STORED;

CREATE FUNCTION comments_add_to_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE incidents SET comments_vector = comments_vector || setweight(to_tsvector('english', NEW.content), 'C')
    WHERE id = NEW.incident_id;
    RETURN NULL;
EXCEPTION WHEN program_limit_exceeded THEN
    -- NOTE: a tsvector holds at most 1 MB; past that, further comments are stored but not indexed.
    RETURN NULL;
END
$$;
CREATE TRIGGER comments_search AFTER INSERT ON comments
    FOR EACH ROW EXECUTE FUNCTION comments_add_to_search();

-- Comments written before this migration.
UPDATE incidents i SET comments_vector = c.vector
FROM (SELECT incident_id, setweight(to_tsvector('english', string_agg(content, ' ' ORDER BY id)), 'C') AS vector
      FROM comments GROUP BY incident_id) c
WHERE c.incident_id = i.id;
