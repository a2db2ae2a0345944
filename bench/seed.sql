-- Set-based seeding of the bench database: realistic distributions over two years.
-- Run in order by bench/seed.py, in one transaction, on a freshly migrated database whose
-- secondary indexes are absent. Ids are generated in order, so incident n is the n-th created.

-- name: word :fragment
-- A word drawn from the vocabulary, the first words far more common than the last (as in
-- real incident text, where "error" is everywhere and "evicted" is rare).
(ARRAY['database', 'timeout', 'latency', 'disk', 'full', 'cpu', 'memory', 'leak', 'checkout',
      'payment', 'login', 'sso', 'token', 'expired', 'certificate', 'dns', 'network', 'packet',
      'loss', 'replica', 'lag', 'primary', 'failover', 'queue', 'backlog', 'worker', 'crash',
      'restart', 'deploy', 'rollback', 'cache', 'miss', 'redis', 'kafka', 'consumer', 'api',
      'gateway', '502', '503', 'error', 'rate', 'limit', 'throttled', 'customer', 'report',
      'email', 'delivery', 'delayed', 'search', 'index', 'slow', 'query', 'lock', 'deadlock',
      'migration', 'failed', 'backup', 'storage', 'bucket', 'permission', 'denied', 'firewall',
      'vpn', 'outage', 'region', 'eu', 'us', 'mobile', 'app', 'ios', 'android', 'push',
      'notification', 'billing', 'invoice', 'export', 'import', 'csv', 'job', 'cron', 'stuck',
      'alert', 'pager', 'monitoring', 'dashboard', 'metrics', 'missing', 'log', 'pipeline',
      'build', 'ci', 'flaky', 'test', 'kubernetes', 'pod', 'evicted', 'node', 'oom', 'killed'])
    [1 + floor(100 * power(random(), 3))::int]

-- name: seed_users :exec
-- Every 4th user a responder, every 20th an admin, 2 % deactivated (never a responder).
INSERT INTO users (username, email, role, active, created_at, updated_at)
SELECT 'user' || n, 'user' || n || '@example.com',
       (CASE WHEN mod(n, 20) = 0 THEN 'admin' WHEN mod(n, 4) = 0 THEN 'responder' ELSE 'reporter' END)::user_role,
       mod(n, 50) <> 7,
       now() - interval '800 days', now() - interval '800 days'
FROM generate_series(1, %(users)s) AS n

-- name: seed_categories :exec
INSERT INTO categories (name, created_at)
SELECT 'category ' || n, now() - interval '800 days' FROM generate_series(1, %(categories)s) AS n

-- name: seed_comment_drafts :exec
-- The comments, drafted before their incidents exist, so each incident can be inserted with
-- its comments' search vector at once. Busy incidents get more comments than quiet ones.
CREATE TEMPORARY TABLE comment_drafts ON COMMIT DROP AS
SELECT 1 + floor(%(incidents)s * power(random(), 0.7))::bigint AS incident_n,
       1 + floor(random() * %(users)s)::bigint AS author_id,
       random() AS delay,
       (SELECT string_agg({:word}, ' ') FROM generate_series(1, 5 + mod(n, 15))) AS content
FROM generate_series(1, %(comments)s) AS n

-- name: seed_incidents :exec
-- Recent incidents are mostly open or in progress, older ones mostly resolved or closed.
-- Severity: 30 % low, 45 % medium, 20 % high, 5 % critical. 80 % of them assigned (half of
-- the open ones) to a responder. Reporters are skewed: some users report far more.
INSERT INTO incidents (title, description, status, severity, reporter_id, assignee_id,
                       resolution, created_at, updated_at, acknowledged_at, resolved_at,
                       version, comments_vector, comments_chars)
SELECT title, description, status, severity, reporter_id, assignee_id,
       CASE WHEN resolved_at IS NOT NULL THEN 'fixed' END,
       created_at, coalesce(resolved_at, acknowledged_at, created_at), acknowledged_at, resolved_at,
       1 + (acknowledged_at IS NOT NULL)::int + (resolved_at IS NOT NULL)::int,
       coalesce(drafts.vector, ''), coalesce(drafts.chars, 0)
FROM (
    SELECT s.*,
           CASE WHEN status = 'resolved' OR (status = 'closed' AND r_resolve < 0.8)
                THEN acknowledged_at + -ln(1 - r_resolve) * interval '6 hours' END AS resolved_at
    FROM (
        SELECT r.*,
               CASE WHEN status <> 'open'
                    THEN created_at + -ln(1 - r_ack) * interval '20 minutes' END AS acknowledged_at,
               CASE WHEN r_assign < (CASE WHEN status = 'open' THEN 0.5 ELSE 0.8 END)
                    THEN 4 * (1 + floor(random() * (%(users)s / 4 - 1)))::bigint END AS assignee_id
        FROM (
            SELECT n, created_at, r_ack, r_resolve, r_assign,
                   (CASE WHEN created_at > now() - interval '7 days' THEN
                        CASE WHEN r_status < 0.4 THEN 'open' WHEN r_status < 0.7 THEN 'in_progress'
                             WHEN r_status < 0.9 THEN 'resolved' ELSE 'closed' END
                    ELSE CASE WHEN r_status < 0.03 THEN 'open' WHEN r_status < 0.05 THEN 'in_progress'
                              WHEN r_status < 0.3 THEN 'resolved' ELSE 'closed' END
                    END)::incident_status AS status,
                   (CASE WHEN r_severity < 0.3 THEN 'low' WHEN r_severity < 0.75 THEN 'medium'
                         WHEN r_severity < 0.95 THEN 'high' ELSE 'critical' END)::incident_severity AS severity,
                   1 + floor(%(users)s * power(random(), 2))::bigint AS reporter_id,
                   (SELECT string_agg({:word}, ' ') FROM generate_series(1, 3 + mod(n, 5)))
                       || ' on host-' || floor(random() * 5000) AS title,
                   (SELECT string_agg({:word}, ' ') FROM generate_series(1, 10 + mod(n, 30)))
                       || ' see ticket T' || floor(random() * 100000) AS description
            FROM (
                SELECT n, random() AS r_status, random() AS r_severity, random() AS r_ack,
                       random() AS r_resolve, random() AS r_assign,
                       now() - interval '730 days'
                           + (n - random()) * (interval '730 days' / %(incidents)s) AS created_at
                FROM generate_series(1, %(incidents)s) AS n
            ) AS r
        ) AS r
    ) AS s
) AS s
LEFT JOIN (
    SELECT incident_n, setweight(to_tsvector('english', string_agg(content, ' ')), 'C') AS vector,
           sum(char_length(content)) AS chars
    FROM comment_drafts GROUP BY incident_n
) AS drafts ON drafts.incident_n = s.n
ORDER BY n

-- name: seed_comments :exec
INSERT INTO comments (incident_id, author_id, content, created_at)
SELECT d.incident_n, d.author_id, d.content,
       least(now(), i.created_at + d.delay * coalesce(i.resolved_at - i.created_at, interval '3 days'))
FROM comment_drafts d JOIN incidents i ON i.id = d.incident_n

-- name: seed_incident_categories :exec
-- One to three categories per incident, the first few categories the most common.
INSERT INTO incident_categories (incident_id, category_id, incident_created_at, incident_status,
                                 incident_severity, incident_source, incident_assignee_id, incident_resolved_at,
                                 incident_ack_seconds, incident_res_seconds)
SELECT DISTINCT i.id, 1 + floor(%(categories)s * power(random(), 1.5))::bigint,
       i.created_at, i.status, i.severity, i.source, i.assignee_id, i.resolved_at, i.ack_seconds, i.res_seconds
FROM incidents i, generate_series(1, 1 + mod(i.id, 3)::int) AS k

-- name: seed_history :exec
-- The entries the API would have written: created for all, resolved where resolved.
INSERT INTO incident_history (incident_id, actor_id, action, changes, created_at)
SELECT id, reporter_id, 'created',
       jsonb_build_object('title', jsonb_build_array(NULL, title), 'status', jsonb_build_array(NULL, 'open')),
       created_at
FROM incidents
UNION ALL
SELECT id, coalesce(assignee_id, 4), 'resolved',
       jsonb_build_object('status', jsonb_build_array('in_progress', 'resolved')), resolved_at
FROM incidents WHERE resolved_at IS NOT NULL
ORDER BY 5

-- name: seed_notifications :exec
-- The reporter hears of each resolution by someone else; most are read.
INSERT INTO notifications (user_id, event, incident_id, actor_id, read, created_at)
SELECT reporter_id, 'resolved', id, assignee_id, random() < 0.8, resolved_at
FROM incidents
WHERE resolved_at IS NOT NULL AND assignee_id IS NOT NULL AND assignee_id <> reporter_id
ORDER BY resolved_at

-- name: seed_follows :exec
INSERT INTO follows (follower_id, followee_id)
SELECT follower_id, followee_id
FROM (SELECT 1 + floor(random() * %(users)s)::bigint AS follower_id,
             4 * (1 + floor(random() * (%(users)s / 4 - 1)))::bigint AS followee_id
      FROM generate_series(1, %(follows)s)) AS pairs
WHERE follower_id <> followee_id
ON CONFLICT DO NOTHING
