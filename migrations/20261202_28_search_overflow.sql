-- A bounded search vector per incident, with the rest of a long thread in overflow documents.
-- SECURITY/PERF: each comment extended its incident's comments_vector, so every comment
-- rewrote it whole (up to 1 MB), recomputed search_vector and its word pairs and inserted
-- every key into three GIN indexes again, under the incident's row lock: after 60 comments of
-- 9,000 characters, a one-word comment there took 0.4-1.0 s (4.5-11 ms on a fresh incident), and
-- 15 of them grew comments + incidents by 32 MB.
-- Now comments_vector holds the thread's first comments only while their text stays within
-- 16 KiB (comments_chars counts it); every later comment is a document of its own in
-- search_overflow: the incident's title and description with that one comment, so that words of
-- the title and of the comment still match together. Writing one never touches the incident.
-- A search matches an incident through its vector or one of its overflow documents
-- (sql/search.sql). Measured figures and the choice of the bound: docs/decisions.md.
-- depends: 20261202_27_write_marks

-- The characters of comment text in comments_vector: 0 for a new incident; NULL for an older
-- one until its next comment counts them (incidents within the bound are not rewritten here).
ALTER TABLE incidents ADD COLUMN comments_chars integer;
ALTER TABLE incidents ALTER COLUMN comments_chars SET DEFAULT 0;

CREATE TABLE search_overflow (
    comment_id    bigint PRIMARY KEY REFERENCES comments ON DELETE CASCADE,
    incident_id   bigint NOT NULL,  -- the comment's, which never changes
    search_vector tsvector NOT NULL
);
CREATE INDEX search_overflow_incident_idx ON search_overflow (incident_id);
CREATE INDEX search_overflow_search_idx ON search_overflow USING gin (search_vector)
    WITH (gin_pending_list_limit = 256);
-- No index of word pairs: the table holds long threads' later comments only, few enough that
-- a phrase is tested on each document holding its words (and each word-pair index is one more
-- index write per comment).

-- An overflow document: the incident's title (A) and description (B), then the comment (C).
CREATE FUNCTION overflow_vector(title text, description text, content text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', description), 'B')
           || setweight(to_tsvector('english', content), 'C')
$$;

-- The bound on the comment text an incident's own vector holds, in characters.
CREATE FUNCTION comments_search_bound() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT 16384';

-- Comments reach an incident's vector in the order written until one would take its text past
-- the bound; that one and every later one go to search_overflow (so the vector keeps the
-- thread's beginning, and a short comment after a long one never rewrites it again). Comments
-- of an incident are written one at a time (create_comment waits for the incident's turn).
-- No vector can now reach the 1 MB a tsvector holds (16 KiB of comments, a 200-character title,
-- description and comment of 10,000), so the handler that left such comments unindexed is gone,
-- and with it a subtransaction per comment.
CREATE OR REPLACE FUNCTION comments_add_to_search() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    chars bigint;
BEGIN
    IF NOT EXISTS (SELECT FROM search_overflow WHERE incident_id = NEW.incident_id) THEN
        SELECT coalesce(i.comments_chars, (SELECT sum(char_length(c.content)) FROM comments c
                                           WHERE c.incident_id = i.id AND c.id <> NEW.id), 0)
               + char_length(NEW.content)
        INTO chars
        FROM incidents i WHERE i.id = NEW.incident_id;
        IF chars <= comments_search_bound() THEN
            UPDATE incidents
            SET comments_vector = comments_vector || setweight(to_tsvector('english', NEW.content), 'C'),
                comments_chars = chars
            WHERE id = NEW.incident_id;
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO search_overflow (comment_id, incident_id, search_vector)
    SELECT NEW.id, NEW.incident_id, overflow_vector(title, description, NEW.content)
    FROM incidents WHERE id = NEW.incident_id;
    RETURN NULL;
END
$$;

-- An incident's overflow documents follow its title and description (only long threads have any).
CREATE FUNCTION incidents_refresh_overflow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE search_overflow o SET search_vector = overflow_vector(NEW.title, NEW.description, c.content)
    FROM comments c
    WHERE o.incident_id = NEW.id AND c.id = o.comment_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER incidents_refresh_overflow AFTER UPDATE OF title, description ON incidents
    FOR EACH ROW WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.description IS DISTINCT FROM NEW.description)
    EXECUTE FUNCTION incidents_refresh_overflow();

-- The query a search's exclusions make (`-word`, `-"a phrase"`), as one query that matches a
-- document holding any of them, or NULL when there are none or the query has an OR (where
-- each document is tested on its own): a search leaves out an incident when its vector or any
-- of its overflow documents holds an exclusion. Read off the query's text, as phrase_pairs does.
CREATE FUNCTION query_exclusions(query tsquery) RETURNS tsquery
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    tokens text[] := ARRAY(SELECT t[1] FROM regexp_matches(query::text, $re$('(?:[^']|'')*'(?::[*A-D]+)?|<[^>]*>|\S)$re$, 'g') AS t);
    excluded text[] := '{}';
    depth int;
    n int := 1;
    first int;
BEGIN
    IF '|' = ANY (tokens) THEN
        RETURN NULL;
    END IF;
    WHILE n < cardinality(tokens) LOOP
        IF tokens[n] = '!' THEN
            first := n + 1;
            depth := 0;
            LOOP
                n := n + 1;
                depth := depth + (tokens[n] = '(')::int - (tokens[n] = ')')::int;
                EXIT WHEN depth <= 0 AND tokens[n] <> '!' OR n >= cardinality(tokens);
            END LOOP;
            excluded := excluded || array_to_string(tokens[first:n], ' ');
        END IF;
        n := n + 1;
    END LOOP;
    IF cardinality(excluded) = 0 THEN
        RETURN NULL;
    END IF;
    RETURN ('(' || array_to_string(excluded, ') | (') || ')')::tsquery;
END
$$;

-- Incidents whose comments' text already passes the bound: their vector is rebuilt from their
-- first comments within it (a running sum, so the first comment past it and all later ones
-- overflow, as the trigger would have sent them).
CREATE TEMPORARY TABLE long_threads ON COMMIT DROP AS
SELECT c.id, c.incident_id, c.content,
       sum(char_length(c.content)) OVER (PARTITION BY c.incident_id ORDER BY c.created_at, c.id) AS upto
FROM comments c
WHERE c.incident_id IN (SELECT incident_id FROM comments GROUP BY incident_id
                        HAVING sum(char_length(content)) > comments_search_bound());
INSERT INTO search_overflow (comment_id, incident_id, search_vector)
SELECT t.id, t.incident_id, overflow_vector(i.title, i.description, t.content)
FROM long_threads t JOIN incidents i ON i.id = t.incident_id
WHERE t.upto > comments_search_bound();
UPDATE incidents i
SET comments_vector = coalesce(kept.vector, ''), comments_chars = coalesce(kept.chars, 0)
FROM (SELECT DISTINCT incident_id FROM long_threads) AS l
LEFT JOIN (SELECT incident_id, setweight(to_tsvector('english', string_agg(content, ' ' ORDER BY upto)), 'C') AS vector,
                  max(upto) AS chars
           FROM long_threads WHERE upto <= comments_search_bound() GROUP BY incident_id) AS kept
  ON kept.incident_id = l.incident_id
WHERE i.id = l.incident_id;

ANALYZE search_overflow;
