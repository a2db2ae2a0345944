-- Incident history: one entry per request that changed an incident.

-- name: list_history :many
SELECT id, incident_id, actor_id, action, changes, created_at
FROM incident_history
WHERE incident_id = %(incident_id)s AND id > %(after_id)s
ORDER BY id
LIMIT %(limit)s

-- name: event_records :fragment
-- The history entry, the notifications and the feed event of each row of a CTE named `event`
-- (incident_id, actor_id, action, changes, recipients, events, follow_event, and publish_events'
-- incident, incident_version, comment): CTEs for a WITH clause.
-- One notification per recipient: the direct event (assigned, resolved) wins over the follow
-- event; the actor is never notified of their own action.
entry AS (
    INSERT INTO incident_history (incident_id, actor_id, action, changes)
    SELECT incident_id, actor_id, action, changes FROM event
), notified AS (
    INSERT INTO notifications (user_id, event, incident_id, actor_id)
    SELECT DISTINCT ON (candidates.recipient) candidates.recipient, candidates.event, e.incident_id, e.actor_id
    FROM event e CROSS JOIN LATERAL (
        SELECT direct.recipient, direct.event, 0 AS rank
        FROM unnest(e.recipients, e.events) AS direct(recipient, event)
        UNION ALL
        SELECT f.follower_id, e.follow_event, 1
        FROM follows f
        WHERE f.followee_id = e.actor_id AND e.follow_event IS NOT NULL
    ) AS candidates
    WHERE candidates.recipient <> e.actor_id
    ORDER BY candidates.recipient, candidates.rank
),
{:publish_events}

-- name: event_of_request :fragment
-- The request's columns of the `event` CTE of event_records (the query adds incident_id and
-- the incident's document).
SELECT %(actor_id)s::bigint AS actor_id, %(action)s::text AS action, %(changes)s::jsonb AS changes,
       %(recipients)s::bigint[] AS recipients, %(events)s::text[] AS events,
       %(follow_event)s::text AS follow_event

-- name: unassign_all :exec
-- Every incident assigned to the user unassigned (before the user is deleted), each as the
-- change it is: a new version, an `assigned` history entry by the actor, its feed event.
-- NOTE: every turn is taken (an aggregate reads all of its input first) before any row is
-- written, as wait_for_incident requires.
WITH turns AS (
    SELECT array_agg(id) AS ids FROM incidents
    WHERE assignee_id = %(user_id)s AND wait_for_incident(id)
), unassigned AS (
    UPDATE incidents SET assignee_id = NULL, updated_at = now(), version = version + 1
    WHERE id IN (SELECT unnest(ids) FROM turns) AND assignee_id = %(user_id)s
    RETURNING *
), changed AS (
    SELECT i.*, {:linked_categories} AS categories
    FROM unassigned i
), event AS (
    SELECT i.id AS incident_id, %(actor_id)s::bigint AS actor_id, 'assigned'::text AS action,
           jsonb_build_object('assignee_id', jsonb_build_array(%(user_id)s::bigint, NULL)) AS changes,
           ARRAY[]::bigint[] AS recipients, ARRAY[]::text[] AS events, NULL::text AS follow_event,
           {:incident_document} AS incident, i.version AS incident_version, NULL::json AS comment
    FROM changed i
),
{:event_records}
SELECT FROM event

-- name: record_event :one
-- One history entry, its notifications and its feed event, after the change was written by
-- earlier statements of the transaction; returns the incident as incident_details shows it now
-- (PERF: one round trip per write, which also spares the change its get_incident).
WITH current AS (
    SELECT * FROM incident_details WHERE id = %(incident_id)s
), event AS (
    SELECT i.id AS incident_id, request.*, {:incident_document} AS incident,
           i.version AS incident_version, NULL::json AS comment
    FROM current i, ({:event_of_request}) AS request
),
{:event_records}
SELECT * FROM current
