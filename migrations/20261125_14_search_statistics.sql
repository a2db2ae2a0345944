-- Finer statistics of the search vectors. PERF: a search finds its newest matches by reading
-- the primary key backwards when PostgreSQL expects the words to be common, through the search
-- index when it expects them rare. A word missing from the statistics (a ticket number such as
-- T7138) is expected in 0.5 % of incidents at most, or half the rarest listed word, and with the
-- default 1,000 listed words the list held only the ~100 everyday ones (the rarest in 16 % of
-- incidents): PostgreSQL read the whole table backwards for 6 matches, 437-534 ms at 1M
-- incidents. With 10,000 the list reaches words in 0.02 % of incidents: 0.5 ms through the
-- index. ANALYZE of incidents samples 300,000 rows instead of 120,000 and takes about 28 s at
-- 1M, not 11 s (it computes the word pairs of every sampled row).
-- depends: 20261125_13_phrase_search
ALTER TABLE incidents ALTER COLUMN search_vector SET STATISTICS 1000;
-- Gathered now rather than at the next autovacuum, which may be days away on a large table:
-- until then the word-pair index of migration 13 has no statistics at all.
ANALYZE incidents;
