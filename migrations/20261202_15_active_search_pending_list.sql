-- The index of active incidents' words (migration 12) merges a 256 kB pending list, as the
-- other two search indexes do since migration 13 (which left this one at PostgreSQL's 4 MB).
-- Every new incident is open and so goes into this index. POST /incidents at 1M incidents,
-- 16 clients, two alternating 60 s rounds: p99 99.7-118.7 ms with 4 MB, 93.6-109.0 ms with
-- 256 kB; slowest request 167-213 against 159-180 ms.
-- depends: 20261125_14_search_statistics
ALTER INDEX incidents_active_search_idx SET (gin_pending_list_limit = 256);
