DROP TRIGGER comments_search ON comments;
DROP FUNCTION comments_add_to_search();
ALTER TABLE incidents DROP COLUMN search_vector;
ALTER TABLE incidents DROP COLUMN comments_vector;
