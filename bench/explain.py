"""make bench, step 2: EXPLAIN (ANALYZE, BUFFERS) every list, search and stats query with the
index migration's indexes absent and present, custom and generic plans, into
bench/results/explain.md (python -m bench.explain)."""

import datetime
import pathlib
import re
import statistics
import time

import psycopg
from psycopg import sql

from api.db import connect
from api.driver import numbered
from api.lists import IncidentLists, incident_filters
from api.resources.analytics import SEARCH_CANDIDATES, stats_span
from api.sql import load_queries
from bench import database, indexes

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "explain.md"
RUNS = 3
# A generic plan cannot fold a search's query-dependent branches, so it may test every incident
# with them: it is cut off, as the app never runs it (search is planned per call).
GENERIC_TIMEOUT_MS = 5000


def probes(conn):
    """Real ids that make each case representative: the busiest users, category, incident."""
    one = lambda text: conn.execute(text).fetchone()["id"]  # noqa: E731
    return {
        "assignee": one(
            "SELECT assignee_id AS id FROM incidents WHERE status IN ('open', 'in_progress') "
            "AND assignee_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ),
        "reporter": one("SELECT reporter_id AS id FROM incidents GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"),
        "category": one(
            "SELECT category_id AS id FROM incident_categories GROUP BY 1 ORDER BY count(*) LIMIT 1"
        ),
        "common_category": one(
            "SELECT category_id AS id FROM incident_categories GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ),
        "incident": one("SELECT incident_id AS id FROM comments GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"),
        "notified": one("SELECT user_id AS id FROM notifications GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"),
        "followed": one("SELECT followee_id AS id FROM follows GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"),
        "responder": one("SELECT id FROM users WHERE role = 'responder' ORDER BY id DESC LIMIT 1"),
        "follower": one("SELECT follower_id AS id FROM follows GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"),
        "unreferenced": unreferenced_user(conn),
    }


def unreferenced_user(conn):
    """A user nothing refers to, whose (rolled back) deletion runs every foreign-key check."""
    conn.execute(
        "INSERT INTO users (username, email) VALUES ('bench_unreferenced', 'bench@example.com') "
        "ON CONFLICT DO NOTHING"
    )
    return conn.execute("SELECT id FROM users WHERE username = 'bench_unreferenced'").fetchone()["id"]


def cases(queries, ids, page_two_after):
    """(title, query name, SQL text, parameters) for every query behind a list, search or stats endpoint."""
    lists = IncidentLists(queries)
    page = {"after_value": None, "after_id": None, "limit": 51}

    def listing(title, sort="-created_at", first=True, after=page, **args):
        query, params = lists.query(sort, first, {**incident_filters(args), **after})
        return (title, query.name, query.text, params)

    def user_listing(title, user_id, relation="any"):
        return listing(title, user_id=user_id, relation=relation)

    def search(title, query, **args):
        return (
            title,
            "search_incidents",
            queries.search_incidents.text,
            {
                **incident_filters(args),
                "query": query,
                "after_rank": None,
                "after_id": None,
                "limit": 51,
                "max_candidates": SEARCH_CANDIDATES,
            },
        )

    return [
        listing("GET /incidents (newest first)"),
        listing("GET /incidents page 2 (cursor)", first=False, after={**page, **page_two_after}),
        listing("GET /incidents?status=open,in_progress", status=["open", "in_progress"]),
        listing(
            "GET /incidents?status=open&severity=critical,high",
            status=["open"],
            severity=["critical", "high"],
        ),
        listing("GET /incidents?assignee_id=none&status=open", status=["open"], assignee_id=None),
        listing("GET /incidents?assignee_id=<busiest>", assignee_id=ids["assignee"]),
        listing(
            "GET /incidents?created_after=<30 days ago>",
            created_after=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30),
        ),
        listing("GET /incidents?sort=-severity", sort="-severity"),
        listing("GET /incidents?sort=-updated_at", sort="-updated_at"),
        user_listing("GET /users/{busiest reporter}/incidents", ids["reporter"]),
        user_listing(
            "GET /users/{busiest assignee}/incidents?relation=assignee", ids["assignee"], "assignee"
        ),
        user_listing("GET /users/{a responder}/incidents", ids["responder"]),
        listing("GET /categories/{rarest}/incidents", category_id=ids["category"]),
        listing("GET /categories/{most common}/incidents", category_id=ids["common_category"]),
        listing(
            "GET /categories/{most common}/incidents?created_before=<a year ago>",
            category_id=ids["common_category"],
            created_before=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=365),
        ),
        search("GET /incidents/search?query=pod evicted", "pod evicted"),
        search('GET /incidents/search?query="pod evicted" (a phrase of common words)', '"pod evicted"'),
        search("GET /incidents/search?query=host-1234", "host-1234"),
        search("GET /incidents/search?query=T7138 (a rare word: a ticket number)", "T7138"),
        search(
            'GET /incidents/search?query="oom killed" -kubernetes&status=open',
            '"oom killed" -kubernetes',
            status=["open"],
        ),
        search(
            "GET /incidents/search?query=pod evicted&status=open (common words, open incidents)",
            "pod evicted",
            status=["open"],
        ),
        search("GET /incidents/search?query=pod evicted&status=resolved", "pod evicted", status=["resolved"]),
        search("GET /incidents/search?query=database timeout (broad: common words)", "database timeout"),
        (
            "GET /incidents/stats",
            "incident_stats_all",
            queries.incident_stats_all.text,
            {**stats_span({}), "days": 30},
        ),
        (
            "GET /incidents/stats?days=3660",
            "incident_stats_all",
            queries.incident_stats_all.text,
            {**stats_span({}), "days": 3660},
        ),
        (
            "GET /incidents/stats?status=resolved,closed&severity=low,medium,high&created_after=<700 days ago>",
            "incident_stats_rollup",
            queries.incident_stats_rollup.text,
            {
                **stats_span(
                    {
                        "status": ["resolved", "closed"],
                        "severity": ["low", "medium", "high"],
                        "created_after": datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=700),
                    }
                ),
                "days": 3660,
            },
        ),
        (
            "GET /incidents/stats (general query, no filter)",
            "incident_stats",
            queries.incident_stats.text,
            {**incident_filters({}), "days": 30},
        ),
        (
            "GET /incidents/stats?severity=critical&created_after=<90 days ago>",
            "incident_stats",
            queries.incident_stats.text,
            {
                **incident_filters(
                    {
                        "severity": ["critical"],
                        "created_after": datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=90),
                    }
                ),
                "days": 90,
            },
        ),
        (
            "GET /incidents/{busiest}/comments",
            "list_comments",
            queries.list_comments.text,
            {"incident_id": ids["incident"], "after_created_at": "-infinity", "after_id": 0, "limit": 51},
        ),
        (
            "GET /incidents/{busiest}/history",
            "list_history",
            queries.list_history.text,
            {"incident_id": ids["incident"], "after_id": 0, "limit": 51},
        ),
        (
            "GET /notifications (busiest recipient)",
            "list_notifications",
            queries.list_notifications.text,
            {"user_id": ids["notified"], "unread": False, "before_id": None, "limit": 51},
        ),
        (
            "GET /notifications?unread=true",
            "list_notifications",
            queries.list_notifications.text,
            {"user_id": ids["notified"], "unread": True, "before_id": None, "limit": 51},
        ),
        (
            "GET /users?role=responder",
            "list_users",
            queries.list_users.text,
            {"role": "responder", "active": None, "after_id": 0, "limit": 51},
        ),
        ("GET /categories", "list_categories", queries.list_categories.text, {"after_id": 0, "limit": 51}),
        (
            "GET /users/{most followed}/followers",
            "list_followers",
            queries.list_followers.text,
            {"user_id": ids["followed"], "after_id": 0, "limit": 51},
        ),
        (
            "GET /users/{keenest follower}/following",
            "list_following",
            queries.list_following.text,
            {"user_id": ids["follower"], "after_id": 0, "limit": 51},
        ),
        (
            "GET /auth/tokens",
            "list_tokens",
            queries.list_tokens.text,
            {"user_id": ids["responder"], "token_hash": bytes(32), "after_id": 0, "limit": 51},
        ),
        (
            "GET /webhooks",
            "list_webhooks",
            queries.list_webhooks.text,
            {"after_id": 0, "limit": 51},
        ),
        (
            "GET /webhooks/1/deliveries",
            "list_deliveries",
            queries.list_deliveries.text,
            {"webhook_id": 1, "before_id": None, "limit": 51},
        ),
        (
            "DELETE /users/{unreferenced} (foreign-key checks)",
            "delete_user",
            queries.delete_user.text,
            {"id": ids["unreferenced"]},
        ),
        (
            "DELETE /incidents/{busiest} (cascades to comments, history, notifications)",
            "delete_incident",
            queries.delete_incident.text,
            {"id": ids["incident"], "actor_id": ids["responder"]},
        ),
    ]


def measure(conn, text, params, generic=False, runs=RUNS):
    """(median execution ms, shared buffers touched by the whole plan, plan text) over `runs`
    runs (warm, but for the first)."""
    timings = []
    for _ in range(runs):
        try:
            plan = "\n".join(row[0] for row in _explain(conn, text, params, generic))
        except psycopg.errors.QueryCanceled:
            return None, 0, f"(cancelled after {GENERIC_TIMEOUT_MS} ms)"
        timings.append(float(re.search(r"Execution Time: ([0-9.]+) ms", plan)[1]))
    top = re.search(r"Buffers: shared((?: hit=\d+)?(?: read=\d+)?)", plan)
    buffers = sum(int(n) for n in re.findall(r"\d+", top[1])) if top else 0
    return statistics.median(timings), buffers, plan


def _explain(conn, text, params, generic):
    options = "ANALYZE, BUFFERS"
    cursor = conn.cursor(row_factory=psycopg.rows.tuple_row)
    if not generic:
        with conn.transaction(force_rollback=True):  # a measured DELETE changes nothing
            return cursor.execute(f"EXPLAIN ({options}) {text}", params).fetchall()
    prepared, names = numbered(text)
    cursor.execute(f"PREPARE bench_query AS {prepared}")  # outside the transaction: a rollback keeps it
    try:
        with conn.transaction(force_rollback=True):
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            cursor.execute(f"SET LOCAL statement_timeout = {GENERIC_TIMEOUT_MS}")
            args = sql.SQL(", ").join(sql.Literal(_literal(params[n])) for n in names)
            execute = "EXECUTE bench_query({})" if names else "EXECUTE bench_query"
            return cursor.execute(sql.SQL(f"EXPLAIN ({options}) {execute}").format(args)).fetchall()
    finally:
        cursor.execute("DEALLOCATE bench_query")


def _literal(value):
    """Lists as array literals, so EXECUTE casts them to the prepared (enum) array types."""
    return "{" + ",".join(value) + "}" if isinstance(value, list) else value


def used_indexes(plan_text):
    return set(
        re.findall(r"(?:Index|Index Only|Bitmap Index) Scan(?: Backward)? (?:using|on) (\w+)", plan_text)
    )


def run(url):
    queries = load_queries()
    with connect(url) as conn:
        conn.execute("SET jit = off")  # as on the app's connections (api/db.py)
        ids = probes(conn)
        newest = {**incident_filters({}), "after_value": None, "after_id": None, "limit": 50}
        query, params = IncidentLists(queries).query("-created_at", True, newest)
        first = query(conn, **params)
        page_two = {"after_value": first[-1]["created_at"], "after_id": first[-1]["id"]}
        todo = cases(queries, ids, page_two)
        indexes.drop(conn)
        before = [measure(conn, text, params, runs=1) for _, _, text, params in todo]
        build = indexes.create(conn)
        after = [measure(conn, text, params) for _, _, text, params in todo]
        generic = [measure(conn, text, params, generic=True, runs=1) for _, _, text, params in todo]
        sizes = conn.execute(
            "SELECT indexrelname AS name, pg_size_pretty(pg_relation_size(indexrelid)) AS size "
            "FROM pg_stat_user_indexes"
        ).fetchall()
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM incidents) AS incidents, (SELECT count(*) FROM comments) "
            "AS comments, (SELECT count(*) FROM users) AS users, version() AS version"
        ).fetchone()
    return todo, before, after, generic, build, {r["name"]: r["size"] for r in sizes}, counts


def report(todo, before, after, generic, build, sizes, counts):
    lines = [
        "# EXPLAIN (ANALYZE, BUFFERS): every list, search and stats query, without and with indexes",
        "",
        f"Written by `make bench` on {datetime.date.today()} against {counts['incidents']:,} incidents, "
        f"{counts['comments']:,} comments and {counts['users']:,} users ({counts['version'].split(' on ')[0]}).",
        f"Times are execution times in ms: *with* is the median of {RUNS} warm runs with every index of the "
        "index migration (custom plans, as the app's connections use); *without* is one run with none of them; "
        "*generic* is one run of the plan PostgreSQL may switch to for a prepared statement after five "
        "executions (`plan_cache_mode = force_generic_plan`), with the indexes, cut off after "
        f"{GENERIC_TIMEOUT_MS:,} ms (a search's generic plan may test every incident). Buffers are the shared blocks "
        "hit or read by the whole plan.",
        "",
        "| request | query | without (ms) | with (ms) | speed-up | buffers without → with | generic (ms) | indexes used |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for (title, name, _, _), b, a, g in zip(todo, before, after, generic, strict=True):
        used = ", ".join(sorted(used_indexes(a[2]))) or "—"
        lines.append(
            f"| {title} | `{name}` | {b[0]:.2f} | {a[0]:.2f} | {b[0] / max(a[0], 0.001):.0f}× | "
            f"{b[1]:,} → {a[1]:,} | {_ms(g[0])} | {used} |"
        )
    all_used = set().union(
        *(used_indexes(a[2]) | used_indexes(g[2]) for a, g in zip(after, generic, strict=True))
    )
    lines += [
        "",
        "## The indexes",
        "",
        "Indexes on foreign-key columns serve the checks PostgreSQL runs when a user is deleted; those "
        "run in triggers, whose plans EXPLAIN does not show, so they read *no* below. The DELETE row "
        "above measures them together.",
        "",
        "| index | build (s) | size | used by a plan above |",
        "|---|---:|---:|---|",
    ]
    for statement, seconds in build.items():
        name = re.search(r"CREATE INDEX (\w+)", statement)[1]
        lines.append(
            f"| `{name}` | {seconds:.1f} | {sizes.get(name, '?')} | {'yes' if name in all_used else 'no'} |"
        )
    lines += ["", "## Plans", ""]
    for (title, _, _, _), b, a, g in zip(todo, before, after, generic, strict=True):
        lines += [
            f"### {title}",
            "",
            "With indexes:",
            "",
            "```",
            a[2],
            "```",
            "",
            "<details><summary>Without indexes</summary>",
            "",
            "```",
            b[2],
            "```",
            "",
            "</details>",
            "",
            "<details><summary>Generic plan, with indexes</summary>",
            "",
            "```",
            g[2],
            "```",
            "",
            "</details>",
            "",
        ]
    return "\n".join(lines)


def _ms(value):
    return f"> {GENERIC_TIMEOUT_MS}" if value is None else f"{value:.2f}"


def main():
    if database.seeded_scale() is None:
        raise SystemExit(f"{database.NAME} is not seeded: run `make bench` (or python -m bench.seed) first")
    started = time.perf_counter()
    results = run(database.bench_url())
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report(*results))
    print(f"wrote {RESULTS} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
