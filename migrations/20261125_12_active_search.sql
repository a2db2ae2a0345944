-- Searches within open and in-progress incidents (the triage queue) through a search index of
-- those incidents alone. PERF: through the index of all incidents, `"oom killed"
-- -kubernetes&status=open` intersected the posting lists of two common words (160,000
-- incidents each) before the status bitmap cut them to a few: 24-32 ms at 1M incidents; this
-- index holds the 56,000 active ones (9 MB): 4.6 ms. pgbench on POST /incidents' statements
-- showed no cost (2,122-2,748 tps with it, 2,170-2,495 without, alternating).
-- depends: 20261125_11_category_lists
CREATE INDEX incidents_active_search_idx ON incidents USING gin (search_vector)
    WHERE status IN ('open', 'in_progress');
