-- Incidents. Reads go through the incident_details view, the API's representation.

-- name: get_incident :one
SELECT * FROM incident_details WHERE id = %(id)s

-- name: get_incident_for_token :one
-- get_incident and the caller behind a bearer token (token_user) in one round trip: no row
-- when the token names no active user; NULL incident columns when there is no such incident.
SELECT c.id AS caller_id, c.username AS caller_username, c.role AS caller_role, d.*
FROM ({:token_user}) AS c
LEFT JOIN incident_details d ON d.id = %(id)s

-- name: incident_filters :fragment
-- The incident filters shared by search and stats (a NULL filter matches all): the filter_*
-- fragments below, of which a list joins only the filters it was given (api/lists.py).
(%(status)s::incident_status[] IS NULL OR {:filter_status})
  AND (%(severity)s::incident_severity[] IS NULL OR {:filter_severity})
  AND (%(reporter_id)s::bigint IS NULL OR {:filter_reporter_id})
  AND (%(assignee_id)s::bigint IS NULL OR {:filter_assignee_id})
  AND (NOT %(unassigned)s OR {:filter_unassigned})
  AND (%(category_id)s::bigint IS NULL OR {:filter_category_id})
  AND (%(created_after)s::timestamptz IS NULL OR {:filter_created_after})
  AND (%(created_before)s::timestamptz IS NULL OR {:filter_created_before})
  AND (%(source)s::text[] IS NULL OR {:filter_source})
  AND (%(dedup_key)s::text IS NULL OR {:filter_dedup_key})

-- name: filter_status :fragment
i.status = ANY(%(status)s::incident_status[])

-- name: filter_severity :fragment
i.severity = ANY(%(severity)s::incident_severity[])

-- name: filter_one_status :fragment
-- filter_status for a list of one status: an equality, which an index can read in order.
i.status = (%(status)s::incident_status[])[1]

-- name: filter_one_severity :fragment
i.severity = (%(severity)s::incident_severity[])[1]

-- name: filter_reporter_id :fragment
i.reporter_id = %(reporter_id)s::bigint

-- name: filter_assignee_id :fragment
i.assignee_id = %(assignee_id)s::bigint

-- name: filter_unassigned :fragment
i.assignee_id IS NULL

-- name: filter_category_id :fragment
EXISTS (SELECT 1 FROM incident_categories ic
        WHERE ic.incident_id = i.id AND ic.category_id = %(category_id)s::bigint)

-- name: filter_created_after :fragment
i.created_at >= %(created_after)s::timestamptz

-- name: filter_created_before :fragment
i.created_at < %(created_before)s::timestamptz

-- name: filter_source :fragment
i.source = ANY(%(source)s::text[])

-- name: filter_dedup_key :fragment
i.dedup_key = %(dedup_key)s::text

-- name: page_for_token :fragment
-- A list query's page ({page}, ordered by {order_by}, which names it `page`) with the caller
-- behind a bearer token (token_user's columns as caller_*) in every row: one row of NULL page
-- columns when the page is empty, no row when the token names no active user. PERF: the token
-- and the page in one round trip (lists are most of what clients read).
SELECT c.id AS caller_id, c.username AS caller_username, c.role AS caller_role, page.*
FROM ({:token_user}) AS c
LEFT JOIN LATERAL ({page}) AS page ON TRUE
ORDER BY {order_by}

-- name: list_incidents :many
-- One page of incidents matching the filters. The slots {filters}, {after}, {order_by} and
-- {rows} take constant SQL (the filter_* fragments of the filters given, or TRUE; SQL picked
-- by the sort key; a row count from api/lists.py's PAGE_ROWS), never input.
SELECT * FROM incident_details i
WHERE {filters}
  AND {after}
ORDER BY {order_by}
LIMIT {rows}

-- name: list_user_incidents :many
-- One page of the incidents a user reported or is assigned (relation 'reporter', 'assignee'
-- or 'any'), matching the filters. PERF: reporter OR assignee in one scan would read the
-- newest incidents until enough are the user's; two limited scans of the per-user indexes,
-- merged, read only the user's own. An incident both reported by and assigned to the user
-- comes from the first scan only, so the merge needs no deduplication (no join back).
SELECT * FROM (
    (SELECT * FROM incident_details i
     WHERE i.reporter_id = %(user_id)s AND %(relation)s <> 'assignee'
       AND {filters} AND {after}
     ORDER BY {order_by} LIMIT {rows})
    UNION ALL
    (SELECT * FROM incident_details i
     WHERE i.assignee_id = %(user_id)s AND %(relation)s <> 'reporter'
       AND (%(relation)s = 'assignee' OR i.reporter_id <> %(user_id)s)
       AND {filters} AND {after}
     ORDER BY {order_by} LIMIT {rows})
) AS i
ORDER BY {order_by}
LIMIT {rows}

-- name: list_category_incidents :many :custom_plan
-- One page of a category's incidents in created_at order (either direction), matching the
-- other filters. PERF: walks the category's links in page order, on the copy of created_at
-- each link keeps, and stops after one page; the category filter of list_incidents hashes all
-- of the category's links first. {after} and {order_by} name the links `c`. The created_at
-- range is tested on the links too, so that the walk starts and ends at its bounds. Planned
-- for its values every time: with a created_at range its generic plan took 7.7-23 ms against
-- 0.09-2.2 ms (its range test on the links is a catch-all).
SELECT i.* FROM (SELECT incident_id AS id, incident_created_at AS created_at
                 FROM incident_categories
                 WHERE category_id = %(in_category)s
                   AND (%(created_after)s::timestamptz IS NULL OR incident_created_at >= %(created_after)s)
                   AND (%(created_before)s::timestamptz IS NULL OR incident_created_at < %(created_before)s)) AS c
JOIN incident_details i ON i.id = c.id
WHERE {filters}
  AND {after}
ORDER BY {order_by}
LIMIT {rows}

-- name: create_incident :one
-- A new incident without categories, with its 'created' history entry, notifications and feed
-- event, in one statement (PERF: one round trip, and no BEGIN and COMMIT: the statement commits
-- or fails whole). Returns the incident as incident_details shows it. PERF: most incidents are
-- created without categories, and a query that looks none up sets up no plan nodes for it.
WITH reporter AS (SELECT %(actor_id)s::bigint AS id),
{:uncategorized_incident_created}
SELECT {:new_incident_columns} FROM incident

-- name: create_categorized_incident :one
-- create_incident for an incident with categories: the event shows those `category_ids` names,
-- which the caller links next, in the same transaction (a missing one fails the request).
-- Returns the incident as incident_details shows it, before any category is linked.
WITH reporter AS (SELECT %(actor_id)s::bigint AS id),
incident AS (
    {:insert_incident}
    RETURNING *
),
{:created_with_categories},
{:incident_created}
SELECT {:new_incident_columns} FROM incident

-- name: create_incident_for_token :one
-- create_incident by the caller behind a bearer token (token_user), looked up by the same
-- statement (PERF: one round trip instead of two; POST /incidents took 1.11 times the requests
-- a second with it). No row when the token names no active user; the caller's columns
-- (caller_*) and NULL incident columns when the caller may not assign: an `assignee_id` is set
-- and the caller's role is not one of `assigning_roles`. `actor_id` is not used (NULL).
WITH caller AS ({:token_user}),
reporter AS (
    SELECT id FROM caller
    WHERE %(assignee_id)s::bigint IS NULL OR role = ANY(%(assigning_roles)s::user_role[])
),
{:uncategorized_incident_created}
SELECT c.id AS caller_id, c.username AS caller_username, c.role AS caller_role, n.*
FROM caller c LEFT JOIN (SELECT {:new_incident_columns} FROM incident) AS n ON TRUE

-- name: uncategorized_incident_created :fragment
-- The CTEs of a new incident without categories after the CTE `reporter`: `incident` (the
-- INSERT), `created` and incident_created's.
incident AS (
    {:insert_incident}
    RETURNING *
), created AS (
    SELECT incident.*, '[]'::json AS categories FROM incident
),
{:incident_created}

-- name: new_incident_columns :fragment
-- The columns of a new incident (a row of INSERT INTO incidents ... RETURNING *) as
-- incident_details shows them, before any category is linked.
id, title, description, status, severity, reporter_id, assignee_id, '[]'::json AS categories,
       created_at, updated_at, acknowledged_at, resolved_at, resolution, version, dedup_key, source

-- name: insert_incident :fragment
-- The INSERT of a new incident (create_incident, open_alert_incident), reported by the user of
-- the query's CTE `reporter` (one row, `id`; none: nothing is inserted); one from an alert (a
-- dedup_key) counts that alert.
INSERT INTO incidents (title, description, severity, reporter_id, assignee_id, source, dedup_key,
                       alert_count, last_alert_at)
SELECT %(title)s, %(description)s, %(severity)s, reporter.id, %(assignee_id)s, %(source)s,
       %(dedup_key)s, CASE WHEN %(dedup_key)s::text IS NULL THEN 0 ELSE 1 END,
       CASE WHEN %(dedup_key)s::text IS NULL THEN NULL ELSE now() END
FROM reporter

-- name: created_with_categories :fragment
-- The CTE `created`: the rows of a CTE named `incident` (inserted incidents: RETURNING *) that
-- are new (an alert incident that counted one more alert, alert_count above 1, is none), with
-- the categories `category_ids` names as incident_details shows them.
created AS (
    SELECT incident.*,
           coalesce((SELECT json_agg(json_build_object('id', c.id, 'name', c.name) ORDER BY c.id)
                     FROM categories c WHERE c.id = ANY(%(category_ids)s::bigint[])), '[]') AS categories
    FROM incident
    WHERE incident.alert_count <= 1
)

-- name: incident_created :fragment
-- The 'created' history entry, notifications and feed event of each row of a CTE named
-- `created` (new incidents, with their categories as incident_details shows them), by their
-- reporter. CTEs for a WITH clause.
event AS (
    SELECT i.id AS incident_id, i.reporter_id AS actor_id, request.action, request.changes,
           request.recipients, request.events, request.follow_event, {:incident_document} AS incident,
           i.version AS incident_version, NULL::json AS comment
    FROM created i, ({:event_of_request}) AS request
),
{:event_records}

-- name: linked_categories :fragment
-- The categories linked to the incident row `i`, as incident_details shows them.
coalesce((SELECT json_agg(json_build_object('id', c.id, 'name', c.name) ORDER BY c.id)
          FROM incident_categories ic JOIN categories c ON c.id = ic.category_id
          WHERE ic.incident_id = i.id), '[]')

-- name: lock_incident :one
-- The row to change, locked until the transaction ends (after the incident's turn: see
-- wait_for_incident in the change_feed migration), with its category ids, and its categories
-- as incident_details shows them (for its ETag).
SELECT {:incident_to_change}
FROM incidents i WHERE i.id = %(id)s AND wait_for_incident(i.id) FOR UPDATE OF i

-- name: incident_to_change :fragment
-- The columns of an incident row `i` that a change reads (lock_incident, lock_alert_incident).
i.id, i.title, i.description, i.status, i.severity, i.reporter_id, i.assignee_id,
       i.resolution, i.version,
       ARRAY(SELECT category_id FROM incident_categories
             WHERE incident_id = i.id ORDER BY category_id) AS category_ids,
       {:linked_categories} AS categories

-- name: update_incident :exec
-- acknowledged_at is set the first time the incident leaves 'open'; resolved_at when it
-- enters 'resolved', cleared when it is reopened. (Right of `=`, columns hold old values.)
UPDATE incidents
SET title = %(title)s, description = %(description)s,
    status = %(status)s::incident_status, severity = %(severity)s::incident_severity,
    assignee_id = %(assignee_id)s, resolution = %(resolution)s,
    acknowledged_at = CASE WHEN %(status)s::incident_status <> 'open'
                           THEN coalesce(acknowledged_at, now()) ELSE acknowledged_at END,
    resolved_at = CASE WHEN %(status)s::incident_status = 'resolved' AND status <> 'resolved' THEN now()
                       WHEN %(status)s::incident_status IN ('open', 'in_progress') THEN NULL
                       ELSE resolved_at END,
    updated_at = now(), version = version + 1
WHERE id = %(id)s

-- name: set_incident_categories :exec
-- Makes the incident's categories exactly the given ids (linked in id order).
WITH removed AS (
    DELETE FROM incident_categories
    WHERE incident_id = %(id)s AND category_id <> ALL(%(category_ids)s::bigint[])
)
INSERT INTO incident_categories (incident_id, category_id)
SELECT %(id)s, c.id FROM unnest(%(category_ids)s::bigint[]) AS c(id)
ORDER BY c.id
ON CONFLICT DO NOTHING

-- name: lock_category_rollups :scalar
-- Before set_incident_categories on a resolved or closed incident: the links' triggers then
-- move it out of and into category rollup rows (migration 29) in two steps, unlinks and
-- links, and two such changes crossing categories would lock those rows in opposite orders
-- and deadlock; this locks the existing ones it will touch first, in key order, as every other
-- writer of those rows does. PERF: a query of its own, run only for those incidents (planning
-- it costs more than linking a new incident).
WITH incident AS (
    SELECT i.id, i.created_at, i.resolved_at, i.status, i.severity, i.source, i.assignee_id IS NULL AS unassigned,
           i.ack_seconds, i.res_seconds
    FROM incidents i WHERE i.id = %(id)s AND i.status IN ('resolved', 'closed')
),
touched AS (
    SELECT unnest(%(category_ids)s::bigint[]) AS category_id
    UNION SELECT category_id FROM incident_categories WHERE incident_id = %(id)s
),
locked_days AS (
    SELECT 1 FROM incident_stats_category_days d, incident i
    WHERE d.category_id IN (SELECT category_id FROM touched)
      AND d.created_on = (i.created_at AT TIME ZONE 'UTC')::date
      AND d.resolved_on = coalesce((i.resolved_at AT TIME ZONE 'UTC')::date, 'infinity')
      AND (d.status, d.severity, d.source, d.unassigned) = (i.status, i.severity, i.source, i.unassigned)
    ORDER BY d.category_id
    FOR UPDATE OF d
),
locked_durations AS (
    SELECT 1 FROM incident_stats_category_durations h, incident i,
         LATERAL (VALUES ('ack', i.ack_seconds), ('res', i.res_seconds)) AS r(metric, seconds)
    WHERE h.category_id IN (SELECT category_id FROM touched) AND h.metric = r.metric
      AND h.created_on = date_trunc('month', i.created_at AT TIME ZONE 'UTC')::date
      AND (h.status, h.severity, h.source, h.unassigned) = (i.status, i.severity, i.source, i.unassigned)
      AND h.lower = (SELECT max(lower) FROM incident_stats_bounds WHERE lower <= r.seconds)
    ORDER BY h.category_id, h.metric
    FOR UPDATE OF h
)
SELECT (SELECT count(*) FROM locked_days) + (SELECT count(*) FROM locked_durations) AS locked

-- name: delete_incident :execrows
-- Its comments, history and category links go with it (ON DELETE CASCADE); its last state
-- stays in the feed as an incident.deleted event, whose incident_version counts the deletion
-- as one more change.
WITH gone AS (
    DELETE FROM incidents WHERE id = %(id)s RETURNING id
), event AS (
    SELECT i.id AS incident_id, %(actor_id)s::bigint AS actor_id, 'deleted'::text AS action,
           NULL::jsonb AS changes, {:incident_document} AS incident,
           i.version + 1 AS incident_version, NULL::json AS comment
    FROM incident_details i JOIN gone ON gone.id = i.id
),
{:publish_events}
SELECT FROM gone

-- name: incident_exists :scalar
SELECT EXISTS (SELECT 1 FROM incidents WHERE id = %(id)s)
