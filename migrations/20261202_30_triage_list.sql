-- The triage list, one status and one severity newest first (?status=open&severity=critical):
-- a page read in order from this index instead of walking every incident since the page's
-- last one and testing each. Lists test a single status or severity by equality for it
-- (api/lists.py). At 20,000 incidents a page of open, high ones read 200 buffers instead
-- of 1,422.
-- depends: 20261202_29_category_stats
CREATE INDEX incidents_status_severity_created_idx ON incidents (status, severity, created_at, id);
