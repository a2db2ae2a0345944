ALTER INDEX incidents_search_idx RESET (gin_pending_list_limit);
DROP INDEX incidents_word_pairs_idx;
DROP FUNCTION phrase_pairs(tsquery);
DROP FUNCTION word_pairs(tsvector);
