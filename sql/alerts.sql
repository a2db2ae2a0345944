-- Alert intake: incidents opened, acknowledged and resolved by monitoring systems, found by
-- their source and dedup_key (see the alert_intake migration).

-- name: open_alert_incident :one
-- The alert's incident: the open or in-progress one of its source and dedup_key, which counts
-- one more alert and changes in nothing else, or else a new one with its 'created' history
-- entry, notifications and feed event (as create_incident). Concurrent alerts of one new key
-- make one incident: the unique index incidents_open_dedup_key lets one INSERT through and
-- turns the others into the count. `created` says which happened.
WITH reporter AS (SELECT %(actor_id)s::bigint AS id),
incident AS (
    {:insert_incident}
    ON CONFLICT (source, dedup_key) WHERE dedup_key IS NOT NULL AND status IN ('open', 'in_progress')
    DO UPDATE SET alert_count = incidents.alert_count + 1, last_alert_at = now()
    RETURNING *
),
{:created_with_categories},
{:incident_created}
SELECT id, alert_count = 1 AS created FROM incident

-- name: lock_alert_incident :one
-- The open or in-progress incident of the source and dedup_key, as lock_incident returns it
-- (locked after taking its turn); none when the key names no such incident.
SELECT {:incident_to_change}
FROM incidents i
WHERE i.source = %(source)s AND i.dedup_key = %(dedup_key)s AND i.status IN ('open', 'in_progress')
  AND wait_for_incident(i.id)
FOR UPDATE OF i

-- name: find_categories_by_name :scalar
-- The ids of the categories with these names (in any case), ascending.
SELECT coalesce(array_agg(id ORDER BY id), ARRAY[]::bigint[]) FROM categories
WHERE lower(name) IN (SELECT lower(n) FROM unnest(%(names)s::text[]) AS n)
