ALTER INDEX incidents_active_search_idx RESET (gin_pending_list_limit);
