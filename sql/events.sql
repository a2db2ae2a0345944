-- The change feed: events in position order (see the change_feed migration for how positions
-- are taken so that no reader ever skips one).

-- name: incident_document :fragment
-- The incident as an event keeps it (incident_document: the API's incident without
-- allowed_transitions, which depends on the reader), from a row `i` with incident_details'
-- columns. PERF: a row of typed values; readers build its JSON (event_data).
ROW(i.id, i.title, i.description, i.status, i.severity, i.reporter_id, i.assignee_id, i.categories,
    i.created_at, i.updated_at, i.acknowledged_at, i.resolved_at, i.resolution, i.version, i.dedup_key,
    i.source)::incident_document

-- name: publish_events :fragment
-- The feed events of the rows of a CTE named `event` (incident_id, actor_id, action, changes,
-- incident: its document, incident_version, comment: its document or NULL): CTEs for a WITH
-- clause. Position: the column's default, next_feed_position(): the transaction's id (taken
-- when the executor gets here, after any turn the statement waited for) times 2^20 plus the
-- event's ordinal in the transaction, after any event it wrote before. PERF: writers take no
-- lock for it; readers wait for older transactions instead (read_feed). The incident is kept
-- as a row (incident_document), not JSON, and one call per event takes the position, where a
-- CTE for the base, a probe of the primary key and a window function were plan nodes that
-- every statement set up: the event is 61 % less of the statement's work (see
-- docs/decisions.md).
published AS (
    INSERT INTO events (type, actor_id, incident_id, incident_version, incident, changes, comment)
    SELECT CASE e.action WHEN 'commented' THEN 'comment.created' ELSE 'incident.' || e.action END,
           e.actor_id, e.incident_id, e.incident_version, e.incident,
           CASE WHEN e.action <> 'commented' THEN e.changes END, e.comment
    FROM event e
)

-- name: event_data :fragment
-- The data of an event, from a row `e` of events, as the API shows it: the incident, with the
-- changes, the comment, or (incident.deleted) nothing else.
CASE e.type
    WHEN 'comment.created' THEN json_build_object('incident', incident_json(e.incident), 'comment', e.comment)
    WHEN 'incident.deleted' THEN json_build_object('incident', incident_json(e.incident))
    ELSE json_build_object('incident', incident_json(e.incident), 'changes', e.changes) END

-- name: comment_document :fragment
-- A comment as the API shows it, as JSON, from a row `c` of comments.
json_build_object('id', c.id, 'incident_id', c.incident_id, 'author_id', c.author_id,
                  'content', c.content, 'created_at', rfc3339(c.created_at))

-- name: feed_horizon :fragment
-- The lowest position a transaction still running (or yet to start) may write: events below
-- it are final, none will ever join them.
pg_snapshot_xmin(pg_current_snapshot())::text::bigint * 1048576

-- name: read_feed :many :custom_plan
-- One page of the events after `after` (or after the pruned ones when it is NULL) that are
-- final (below feed_horizon, in this statement's snapshot, which sees every transaction below
-- it ended), with the position the feed is pruned through in every row: one row of NULL event
-- columns when the page is empty. PERF: one snapshot and one round trip per poll.
SELECT pruned.through_position AS pruned_through, page.*
FROM events_pruned pruned
LEFT JOIN LATERAL (
    SELECT e.position, e.type, e.occurred_at, e.actor_id, e.incident_id, e.incident_version,
           {:event_data} AS data
    FROM events e
    WHERE e.position > coalesce(%(after)s::bigint, pruned.through_position)
      AND e.position < {:feed_horizon}
      AND (%(types)s::text[] IS NULL OR e.type = ANY(%(types)s::text[]))
      AND (%(incident_id)s::bigint IS NULL OR e.incident_id = %(incident_id)s)
    ORDER BY e.position
    LIMIT %(limit)s
) AS page ON TRUE
ORDER BY page.position

-- name: feed_position :scalar
-- The feed's newest position: its newest event's, or the position pruned through when the
-- retention job left none. PERF: max() reads one entry at the end of the primary key.
SELECT coalesce((SELECT max(position) FROM events), (SELECT through_position FROM events_pruned)) AS position
