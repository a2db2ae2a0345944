-- The change feed: events in position order (see the change_feed migration for why the
-- positions follow commit order).

-- name: incident_document :fragment
-- The incident as the API shows it (without allowed_transitions, which depends on the reader),
-- as JSON, from a row `i` with incident_details' columns.
json_build_object('id', i.id, 'title', i.title, 'description', i.description, 'status', i.status,
                  'severity', i.severity, 'reporter_id', i.reporter_id, 'assignee_id', i.assignee_id,
                  'categories', i.categories, 'created_at', rfc3339(i.created_at),
                  'updated_at', rfc3339(i.updated_at), 'acknowledged_at', rfc3339(i.acknowledged_at),
                  'resolved_at', rfc3339(i.resolved_at), 'resolution', i.resolution, 'version', i.version)

-- name: publish_events :fragment
-- The feed events of the rows of a CTE named `event` (incident_id, actor_id, action, changes,
-- incident: its document, incident_version, comment: its document or NULL): CTEs for a WITH
-- clause. Positions come from feed_head, whose row stays locked until the transaction commits,
-- so the next writer's positions are taken after this one's events are visible (PERF: see
-- docs/decisions.md). A statement without events leaves feed_head alone.
feed_moved AS (
    UPDATE feed_head SET last_position = last_position + (SELECT count(*) FROM event)
    WHERE EXISTS (SELECT FROM event)
    RETURNING last_position
), published AS (
    INSERT INTO events (position, type, actor_id, incident_id, incident_version, data)
    SELECT h.last_position - count(*) OVER () + row_number() OVER (ORDER BY e.incident_id),
           CASE e.action WHEN 'commented' THEN 'comment.created' ELSE 'incident.' || e.action END,
           e.actor_id, e.incident_id, e.incident_version,
           CASE e.action
               WHEN 'commented' THEN json_build_object('incident', e.incident, 'comment', e.comment)
               WHEN 'deleted' THEN json_build_object('incident', e.incident)
               ELSE json_build_object('incident', e.incident, 'changes', e.changes) END
    FROM event e CROSS JOIN feed_moved h
)

-- name: comment_document :fragment
-- A comment as the API shows it, as JSON, from a row `c` of comments.
json_build_object('id', c.id, 'incident_id', c.incident_id, 'author_id', c.author_id,
                  'content', c.content, 'created_at', rfc3339(c.created_at))

-- name: read_feed :many :custom_plan
-- One page of events after `after` (or from the oldest kept one when it is NULL), with the
-- position just before the oldest kept event (feed_head's when every event was pruned) in
-- every row: one row of NULL event columns when the page is empty. PERF: one snapshot and one
-- round trip per poll.
WITH kept AS (
    SELECT coalesce((SELECT min(position) FROM events), (SELECT last_position FROM feed_head) + 1) - 1
           AS before_oldest
)
SELECT kept.before_oldest, page.*
FROM kept
LEFT JOIN LATERAL (
    SELECT e.position, e.type, e.occurred_at, e.actor_id, e.incident_id, e.incident_version, e.data
    FROM events e
    WHERE e.position > coalesce(%(after)s::bigint, kept.before_oldest)
      AND (%(types)s::text[] IS NULL OR e.type = ANY(%(types)s::text[]))
      AND (%(incident_id)s::bigint IS NULL OR e.incident_id = %(incident_id)s)
    ORDER BY e.position
    LIMIT %(limit)s
) AS page ON TRUE
ORDER BY page.position
