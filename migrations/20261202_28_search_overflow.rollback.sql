-- Back to one vector per incident over all its comments: overflow comments are appended to it
-- in the order written, up to the 1 MB a tsvector holds (past that, as the trigger below did,
-- they stay unindexed).
DO $$
DECLARE
    thread record;
    comment record;
    vector tsvector;
BEGIN
    FOR thread IN SELECT i.id, i.comments_vector FROM incidents i
                  WHERE i.id IN (SELECT incident_id FROM search_overflow) LOOP
        vector := thread.comments_vector;
        FOR comment IN SELECT c.content FROM search_overflow o JOIN comments c ON c.id = o.comment_id
                       WHERE o.incident_id = thread.id ORDER BY c.created_at, c.id LOOP
            BEGIN
                vector := vector || setweight(to_tsvector('english', comment.content), 'C');
            EXCEPTION WHEN program_limit_exceeded THEN
                EXIT;
            END;
        END LOOP;
        UPDATE incidents SET comments_vector = vector WHERE id = thread.id;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION comments_add_to_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE incidents SET comments_vector = comments_vector || setweight(to_tsvector('english', NEW.content), 'C')
    WHERE id = NEW.incident_id;
    RETURN NULL;
EXCEPTION WHEN program_limit_exceeded THEN
    -- NOTE: a tsvector holds at most 1 MB; past that, further comments are stored but not indexed.
    RETURN NULL;
END
$$;

DROP FUNCTION query_exclusions(tsquery);
DROP TRIGGER incidents_refresh_overflow ON incidents;
DROP FUNCTION incidents_refresh_overflow();
DROP TABLE search_overflow;
DROP FUNCTION comments_search_bound();
DROP FUNCTION overflow_vector(text, text, text);
ALTER TABLE incidents DROP COLUMN comments_chars;
