"""GET /incidents/stats against figures computed here from controlled timestamps."""

import contextlib
import datetime
import random
import threading

import psycopg
import pytest

from api.db import connect
from api.lists import incident_filters
from api.resources.analytics import STATS_PARAMETERS, split, stats_span

SEVERITIES = ["low", "medium", "high", "critical"]


def percentile(values, fraction):
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def figures(values):
    if not values:
        return {"mean": None, "p50": None, "p90": None}
    return {"mean": sum(values) / len(values), "p50": percentile(values, 0.5), "p90": percentile(values, 0.9)}


def insert(
    db_conn, reporter_id, severity, created, acknowledged=None, resolved=None, status=None, assignee_id=None
):
    status = status or ("resolved" if resolved else "in_progress" if acknowledged else "open")
    db_conn.execute(
        "INSERT INTO incidents (title, severity, status, reporter_id, assignee_id, created_at, acknowledged_at, resolved_at)"
        " VALUES ('t', %s, %s, %s, %s, %s, %s, %s)",
        [severity, status, reporter_id, assignee_id, created, acknowledged, resolved],
    )


@pytest.fixture
def now():
    """Taken per test, not at import: a run that passes midnight UTC must not shift the days."""
    return datetime.datetime.now(datetime.UTC)


@pytest.fixture
def seeded(db_conn, reporter, make_user, now):
    """Incidents over the last days with known MTTA/MTTR; returns what the stats must say."""
    ana, bob = make_user("responder", username="ana"), make_user("responder", username="bob")
    ack, res = {s: [] for s in SEVERITIES}, {s: [] for s in SEVERITIES}
    opened, resolved_on, rows = {}, {}, []
    for n in range(24):
        severity = SEVERITIES[n % 3]  # no critical incidents at all
        created = now - datetime.timedelta(days=n % 5, hours=1 + n)
        acknowledged = created + datetime.timedelta(minutes=5 * (n + 1)) if n % 4 else None
        resolved = acknowledged + datetime.timedelta(hours=n) if acknowledged and n % 2 else None
        assignee = [ana["id"], bob["id"], None][n % 3] if not resolved else None
        insert(db_conn, reporter["id"], severity, created, acknowledged, resolved, assignee_id=assignee)
        rows.append({"severity": severity, "assignee_id": assignee, "created": created})
        if acknowledged:
            ack[severity].append((acknowledged - created).total_seconds())
        if resolved:
            res[severity].append((resolved - created).total_seconds())
            resolved_on[resolved.date()] = resolved_on.get(resolved.date(), 0) + 1
        opened[created.date()] = opened.get(created.date(), 0) + 1
    return {
        "ack": ack,
        "res": res,
        "opened": opened,
        "resolved_on": resolved_on,
        "rows": rows,
        "ana": ana,
        "bob": bob,
    }


def stats(client, user, qs=""):
    result = client.simulate_get("/incidents/stats", query_string=qs, headers=user["headers"])
    assert result.status_code == 200, result.json
    return result.json


def assert_figures(actual, values_by_severity):
    everything = [v for values in values_by_severity.values() for v in values]
    assert actual["mean"] == pytest.approx(figures(everything)["mean"])
    assert actual["p50"] == pytest.approx(figures(everything)["p50"])
    assert actual["p90"] == pytest.approx(figures(everything)["p90"])
    assert list(actual["by_severity"]) == SEVERITIES
    for severity, values in values_by_severity.items():
        expected = figures(values)
        assert actual["by_severity"][severity] == (
            expected if expected["mean"] is None else pytest.approx(expected)
        )


def test_counts_mtta_mttr_workload_and_daily(client, reporter, seeded, now):
    today = now.date()
    body = stats(client, reporter, "days=7")
    assert body["by_status"] == {"open": 6, "in_progress": 6, "resolved": 12, "closed": 0}
    assert body["by_severity"] == {"low": 8, "medium": 8, "high": 8, "critical": 0}
    assert list(body["by_status"]) == ["open", "in_progress", "resolved", "closed"]
    assert_figures(body["mtta_seconds"], seeded["ack"])
    assert_figures(body["mttr_seconds"], seeded["res"])
    assert body["mttr_seconds"]["by_severity"]["critical"] == {"mean": None, "p50": None, "p90": None}
    workload = {w["username"]: (w["open"], w["in_progress"]) for w in body["workload"]}
    assert set(workload) == {"ana", "bob"}
    assert [w["open"] + w["in_progress"] for w in body["workload"]] == sorted(
        (w["open"] + w["in_progress"] for w in body["workload"]), reverse=True
    )
    assert [d["date"] for d in body["daily"]] == [
        (today - datetime.timedelta(days=k)).isoformat() for k in range(6, -1, -1)
    ]
    for day in body["daily"]:
        date = datetime.date.fromisoformat(day["date"])
        assert day["opened"] == seeded["opened"].get(date, 0)
        assert day["resolved"] == seeded["resolved_on"].get(date, 0)
    assert body["daily"][0] == {
        "date": (today - datetime.timedelta(days=6)).isoformat(),
        "opened": 0,
        "resolved": 0,
    }


def test_filters_narrow_every_figure(client, reporter, seeded, now):
    ana = seeded["ana"]["id"]
    body = stats(client, reporter, f"severity=low&assignee_id={ana}")
    expected = sum(1 for r in seeded["rows"] if r["severity"] == "low" and r["assignee_id"] == ana)
    assert expected > 0
    assert body["by_severity"] == {"low": expected, "medium": 0, "high": 0, "critical": 0}
    assert [w["username"] for w in body["workload"]] == ["ana"]
    cut = now - datetime.timedelta(days=2)
    recent = stats(client, reporter, f"created_after={cut.isoformat().replace('+00:00', 'Z')}")
    assert sum(recent["by_status"].values()) == sum(1 for r in seeded["rows"] if r["created"] >= cut)


def test_empty_selection_has_zeros_and_nulls(client, reporter):
    body = stats(client, reporter)
    assert body["by_status"] == {"open": 0, "in_progress": 0, "resolved": 0, "closed": 0}
    assert body["mtta_seconds"]["mean"] is None and body["mttr_seconds"]["p90"] is None
    assert body["workload"] == []
    assert len(body["daily"]) == 30 and all(d["opened"] == d["resolved"] == 0 for d in body["daily"])


@pytest.mark.parametrize("qs", ["days=0", "days=abc", "days=100000", "limit=5", "sort=severity", "bogus=1"])
def test_bad_parameters_are_400(client, reporter, qs):
    assert (
        client.simulate_get("/incidents/stats", query_string=qs, headers=reporter["headers"]).status_code
        == 400
    )


# Unfiltered stats take a fast path (incident_stats_all: the duration histogram kept by a
# trigger, and exact percentiles read from the duration indexes); it must say exactly what
# the general query says about the same incidents.


def both_paths(queries, db_conn, days=30):
    general = queries.incident_stats(db_conn, **incident_filters({}), days=days)
    return general, queries.incident_stats_all(db_conn, **stats_span({}), days=days)


def assert_same(general, fast, path="stats"):
    if isinstance(general, dict):
        assert list(fast) == list(general), path
        for key in general:
            assert_same(general[key], fast[key], f"{path}.{key}")
    elif isinstance(general, list):
        assert len(fast) == len(general), path
        for n, (g, f) in enumerate(zip(general, fast, strict=True)):
            assert_same(g, f, f"{path}[{n}]")
    elif path.endswith(".mean") and general is not None:
        assert fast == pytest.approx(general, rel=1e-12), path  # avg(float8) rounds as it adds up
    else:
        assert fast == general, path


def histogram(db_conn):
    return db_conn.execute(
        "SELECT metric, severity, lower, n, total FROM incident_duration_buckets"
        " WHERE n <> 0 ORDER BY 1, 2, 3"
    ).fetchall()


def rollups(db_conn):
    return [
        db_conn.execute(
            f"SELECT {key}, n FROM {table} WHERE n <> 0 ORDER BY {key}"  # noqa: S608 (constants)
        ).fetchall()
        for table, key in [
            ("incident_stats_days", "created_on, resolved_on::text, status, severity, source, unassigned"),
            (
                "incident_stats_durations",
                "metric, created_on, status, severity, source, unassigned, lower, total",
            ),
            (
                "incident_stats_category_days",
                "category_id, created_on, resolved_on::text, status, severity, source, unassigned",
            ),
            (
                "incident_stats_category_durations",
                "category_id, metric, created_on, status, severity, source, unassigned, lower, total",
            ),
        ]
    ]


def stale_links(db_conn):
    """Category links whose copy of their incident's columns differs from the incident."""
    return db_conn.execute(
        "SELECT c.incident_id, c.category_id FROM incident_categories c JOIN incidents i ON i.id = c.incident_id"
        " WHERE (c.incident_created_at, c.incident_status, c.incident_severity, c.incident_source,"
        "        c.incident_assignee_id, c.incident_resolved_at, c.incident_ack_seconds, c.incident_res_seconds)"
        " IS DISTINCT FROM (i.created_at, i.status, i.severity, i.source, i.assignee_id, i.resolved_at,"
        "                   i.ack_seconds, i.res_seconds)"
    ).fetchall()


def assert_consistent(queries, db_conn):
    """The histogram and the rollups are what a rebuild from the incidents gives, and both
    paths agree."""
    kept, kept_rollups = histogram(db_conn), rollups(db_conn)
    with db_conn.transaction(force_rollback=True):
        db_conn.execute("SELECT incident_duration_buckets_refill()")
        db_conn.execute("SELECT incident_stats_refill()")
        db_conn.execute("SELECT incident_stats_category_refill()")
        assert kept == histogram(db_conn)
        assert kept_rollups == rollups(db_conn)
    assert stale_links(db_conn) == []
    general, fast = both_paths(queries, db_conn)
    assert_same(general, fast)
    return fast


def varied_incidents(db_conn, reporter_id, assignees, now, count=400):
    """Every severity and status, no duration or either or both, ties, sub-second, hours and
    days long, one acknowledgement before creation, one lone critical acknowledgement."""
    rng = random.Random(7)
    shared = [0.25, 90.0, 3600.0]  # durations many incidents share
    rows = []
    for n in range(count):
        severity = rng.choice(SEVERITIES[:3])
        created = now - datetime.timedelta(days=rng.uniform(0, 60))
        ack = rng.choice(shared) if n % 5 == 0 else rng.lognormvariate(6, 2.5)
        res = ack + (rng.choice(shared) if n % 7 == 0 else rng.lognormvariate(9, 2))
        status = rng.choice(["open", "in_progress", "resolved", "closed", "closed"])
        acknowledged = None if status == "open" else created + datetime.timedelta(seconds=ack)
        resolved = (
            created + datetime.timedelta(seconds=res)
            if status == "resolved" or (status == "closed" and n % 3)
            else None
        )
        rows.append(
            (severity, status, reporter_id, rng.choice(assignees + [None]), created, acknowledged, resolved)
        )
    rows.append(
        ("critical", "in_progress", reporter_id, None, now, now - datetime.timedelta(seconds=5), None)
    )
    rows.append(("critical", "open", reporter_id, None, now, None, None))
    with db_conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO incidents (title, severity, status, reporter_id, assignee_id, created_at, acknowledged_at,"
            " resolved_at) VALUES ('t', %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )


@pytest.fixture
def varied(db_conn, reporter, make_user, now):
    assignees = [make_user("responder")["id"] for _ in range(3)]
    varied_incidents(db_conn, reporter["id"], assignees, now)


def test_the_fast_path_says_what_the_general_query_says(queries, db_conn, varied):
    fast = assert_consistent(queries, db_conn)
    assert fast["mtta_seconds"]["by_severity"]["critical"]["p50"] == -5.0
    assert all(fast["mttr_seconds"]["by_severity"][s]["p90"] is not None for s in SEVERITIES[:3])
    assert fast["mttr_seconds"]["by_severity"]["critical"] == {"mean": None, "p50": None, "p90": None}
    for days in (1, 90, 3660):
        assert_same(*both_paths(queries, db_conn, days))


def test_the_fast_path_matches_python_figures(client, reporter, seeded):
    body = stats(client, reporter)
    assert_figures(body["mtta_seconds"], seeded["ack"])
    exact = {s: figures(v) for s, v in seeded["res"].items() if v}
    for severity, expected in exact.items():  # percentiles exactly, as percentile_cont computes them
        actual = body["mttr_seconds"]["by_severity"][severity]
        assert (actual["p50"], actual["p90"]) == (expected["p50"], expected["p90"])


def test_the_histogram_follows_every_change(queries, db_conn, varied):
    ids = [row["id"] for row in db_conn.execute("SELECT id FROM incidents ORDER BY id").fetchall()]
    changes = [
        # acknowledge, resolve, reopen (resolved_at cleared), close, severity change
        (
            "UPDATE incidents SET status = 'in_progress', acknowledged_at = created_at + interval '42 seconds'"
            " WHERE status = 'open' AND id %% 2 = 0",
            [],
        ),
        (
            "UPDATE incidents SET status = 'resolved', resolved_at = acknowledged_at + interval '2 hours'"
            " WHERE status = 'in_progress' AND id %% 3 = 0",
            [],
        ),
        (
            "UPDATE incidents SET status = 'open', resolved_at = NULL WHERE status = 'resolved' AND id %% 4 = 1",
            [],
        ),
        ("UPDATE incidents SET status = 'closed' WHERE status = 'resolved' AND id %% 5 = 2", []),
        ("UPDATE incidents SET severity = 'critical' WHERE id %% 6 = 0", []),
        # a duration moved within its bucket, and one that changes nothing the histogram holds
        (
            "UPDATE incidents SET acknowledged_at = acknowledged_at + interval '1 microsecond' WHERE id = %s",
            [ids[5]],
        ),
        ("UPDATE incidents SET title = 'renamed', assignee_id = NULL WHERE id %% 7 = 0", []),
        ("DELETE FROM incidents WHERE id %% 8 = 3", []),
    ]
    for statement, params in changes:
        db_conn.execute(statement, params)
        assert_consistent(queries, db_conn)


def test_the_histogram_follows_the_api(client, queries, db_conn, reporter, responder, admin, make_incident):
    incident = make_incident(reporter, title="disk full", severity="low")
    path = f"/incidents/{incident['id']}"
    assert histogram(db_conn) == []  # a new incident has no durations
    steps = [
        ("patch", {"status": "in_progress"}, responder),
        ("post_resolve", {}, responder),
        ("patch", {"severity": "high"}, responder),
        ("patch", {"status": "open"}, responder),
        ("post_resolve", {}, responder),
    ]
    for method, body, user in steps:
        if method == "patch":
            result = client.simulate_patch(path, json=body, headers=user["headers"])
        else:
            result = client.simulate_post(path + "/resolve", json=body, headers=user["headers"])
        assert result.status_code == 200, result.json
        assert_consistent(queries, db_conn)
    assert [(r["metric"], r["severity"], r["n"]) for r in histogram(db_conn)] == [
        ("ack", "high", 1),
        ("res", "high", 1),
    ]
    assert client.simulate_delete(path, headers=admin["headers"]).status_code == 204
    assert histogram(db_conn) == []
    assert stats(client, reporter)["mtta_seconds"]["mean"] is None


def test_the_category_rollups_follow_the_api(
    client, queries, db_conn, reporter, responder, admin, make_incident, make_category
):
    first, second = make_category()["id"], make_category()["id"]
    incident = make_incident(reporter, title="disk full", severity="low")
    path = f"/incidents/{incident['id']}"
    steps = [
        {"category_ids": [first]},
        {"status": "in_progress"},
        {"status": "resolved", "category_ids": [second, first]},
        {"severity": "high"},
        {"category_ids": [second]},
        {"status": "closed", "category_ids": [first]},
        {"status": "open", "category_ids": [second]},
    ]
    for body in steps:
        result = client.simulate_patch(path, json=body, headers=responder["headers"])
        assert result.status_code == 200, result.json
        assert_consistent(queries, db_conn)
        for category in first, second:
            body = stats(client, reporter, f"category_id={category}")
            args = {"category_id": category}
            assert_same(queries.incident_stats(db_conn, **incident_filters(args), days=30), body)
    assert client.simulate_delete(f"/categories/{second}", headers=admin["headers"]).status_code == 204
    assert_consistent(queries, db_conn)


# Filtered stats: whichever way the endpoint computes them, they say exactly what the general
# query (one pass over the matching incidents, sorting their durations) says for the same filters.


@pytest.fixture
def filtered(db_conn, reporter, make_user, make_category, now):
    """varied_incidents from two reporters, three assignees and unassigned ones, a third of them
    in one category and a few in another; returns the ids the filters name."""
    assignees = [make_user("responder")["id"] for _ in range(3)]
    other = make_user("reporter")["id"]
    varied_incidents(db_conn, reporter["id"], assignees, now)
    db_conn.execute("UPDATE incidents SET reporter_id = %s WHERE id %% 4 = 0", [other])
    common, rare = make_category()["id"], make_category()["id"]
    db_conn.execute(
        "INSERT INTO incident_categories (incident_id, category_id)"
        " SELECT id, %s FROM incidents WHERE id %% 3 = 0 UNION ALL SELECT id, %s FROM incidents WHERE id %% 50 = 1",
        [common, rare],
    )
    return {"reporter": reporter["id"], "assignee": assignees[0], "common": common, "rare": rare}


def as_query_string(now, ids, case):
    """A case's query string: {name} is an id of `filtered`, {N days ago} a time N days back."""
    ago = lambda days: (now - datetime.timedelta(days=days)).isoformat().replace("+00:00", "Z")  # noqa: E731
    values = {"reporter": ids["reporter"], "assignee": ids["assignee"], "common": ids["common"]}
    values |= {
        "rare": ids["rare"],
        "30_days_ago": ago(30),
        "tomorrow": ago(-1),
        "epoch": "1970-01-01T00:00:00Z",
    }
    return case.format(**values)


FILTERED_CASES = [
    "status=closed",
    "status=open,in_progress",
    "status=open,in_progress,resolved,closed",
    "severity=critical",
    "severity=low,medium,high,critical&status=resolved,closed",
    "reporter_id={reporter}",
    "assignee_id={assignee}",
    "assignee_id=none",
    "assignee_id=none&status=open",
    "category_id={common}",
    "category_id={rare}&severity=medium",
    "created_after={epoch}",
    "created_after={epoch}&days=3660",
    "created_after={epoch}&created_before=2100-01-01T00:00:00Z&status=open,in_progress,resolved,closed",
    "created_after={30_days_ago}",
    "created_before={30_days_ago}&days=90",
    "created_after={tomorrow}",
    "created_before={epoch}",
    "reporter_id={reporter}&category_id={common}&created_after={30_days_ago}&days=3660",
    "assignee_id=none&category_id={common}&status=closed,resolved&severity=low,high",
]


@pytest.mark.parametrize("case", FILTERED_CASES)
def test_filtered_stats_say_what_the_general_query_says(
    client, queries, db_conn, reporter, filtered, now, case
):
    qs = as_query_string(now, filtered, case)
    body = stats(client, reporter, qs)
    args = dict(req.split("=", 1) for req in qs.split("&"))
    parsed = {name: STATS_PARAMETERS[name](value) for name, value in args.items()}
    days = parsed.pop("days", 30)
    assert_same(queries.incident_stats(db_conn, **incident_filters(parsed), days=days), body)


def test_filters_that_match_every_incident_say_what_no_filter_says(
    client, queries, db_conn, reporter, filtered, now
):
    everything = stats(client, reporter)
    for case in FILTERED_CASES[2], FILTERED_CASES[11], FILTERED_CASES[13]:
        assert stats(client, reporter, as_query_string(now, filtered, case)) == everything
    assert sum(stats(client, reporter, "created_after=2100-01-01T00:00:00Z")["by_status"].values()) == 0


# Filtered stats from the rollups (incident_stats_rollup): resolved and closed incidents counted
# per day and their durations per month, the ends of a created_at range read from the
# incidents. Incidents sit on and around day and month boundaries, and the ranges start and
# end inside days, on midnights and on month starts, near the start and the end of a month
# (rounded down with incidents taken away, or up with incidents added), so a unit counted twice
# or left out changes a figure.


def boundaries(now):
    """Month starts and midnights of the last five months, and moments inside their days."""
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    starts = []
    for _ in range(5):
        starts.append(month)
        month = (month - datetime.timedelta(days=1)).replace(day=1)
    midnights = [
        now.replace(hour=0, minute=0, second=0, microsecond=0) - datetime.timedelta(days=d)
        for d in (1, 9, 40)
    ]
    inside = [
        start + datetime.timedelta(days=d, hours=13, minutes=37, seconds=12.345678)
        for start in starts[1:]
        for d in (2, 20)
    ]
    return starts, midnights, inside


@pytest.fixture
def spread(db_conn, reporter, make_user, make_category, now):
    """varied_incidents over five months, and resolved or closed ones created on, just before
    and just after each boundary, some unassigned; in two categories (link_categories)."""
    assignees = [make_user("responder")["id"] for _ in range(2)]
    varied_incidents(db_conn, reporter["id"], assignees, now, count=300)
    db_conn.execute(
        "UPDATE incidents SET created_at = created_at - (id % 150) * interval '1 day',"
        " acknowledged_at = acknowledged_at - (id % 150) * interval '1 day',"
        " resolved_at = resolved_at - (id % 150) * interval '1 day'"
    )
    starts, midnights, inside = boundaries(now)
    rows = []
    for n, moment in enumerate(starts + midnights + inside):
        for offset, status in ((-1, "closed"), (0, "resolved"), (1, "closed")):
            created = moment + datetime.timedelta(microseconds=offset)
            acknowledged = created + datetime.timedelta(seconds=30 * (n + 1))
            resolved = acknowledged + datetime.timedelta(hours=n + offset + 2)
            assignee = None if (n + offset) % 2 else assignees[0]
            rows.append(
                (SEVERITIES[n % 4], status, reporter["id"], assignee, created, acknowledged, resolved)
            )
    with db_conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO incidents (title, severity, status, reporter_id, assignee_id, created_at, acknowledged_at,"
            " resolved_at) VALUES ('t', %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    link_categories(db_conn, [make_category()["id"] for _ in range(2)])
    return starts, midnights, inside


def link_categories(db_conn, categories):
    """Half the incidents in the first category, a third in the second (a sixth in both), the
    incidents on the boundaries in both."""
    first, second = categories
    db_conn.execute(
        "INSERT INTO incident_categories (incident_id, category_id)"
        " SELECT id, %s FROM incidents WHERE id %% 2 = 0 OR id > 300"
        " UNION ALL SELECT id, %s FROM incidents WHERE id %% 3 = 0 OR id > 300",
        [first, second],
    )


def categories(db_conn):
    return [row["id"] for row in db_conn.execute("SELECT id FROM categories ORDER BY id")]


def ranges(starts, midnights, inside):
    """created_after/created_before pairs (None: no bound) over the spread incidents."""
    late_in_month = starts[2] + datetime.timedelta(days=25, hours=3)
    return [
        (inside[0], None),  # early in a month: rounded down, the start of that month taken away
        (inside[1], None),  # late in a month: rounded up, its end added
        (None, inside[2]),
        (None, inside[3]),
        (starts[3], starts[1]),  # whole months
        (starts[3] + datetime.timedelta(microseconds=1), starts[1] - datetime.timedelta(microseconds=1)),
        (midnights[2], midnights[0]),  # whole days
        (midnights[1] + datetime.timedelta(hours=5), midnights[1] + datetime.timedelta(hours=20)),  # one day
        (inside[4], inside[5]),  # inside one month
        (inside[3], late_in_month),
        (inside[1], inside[4]),
        (inside[0], inside[6]),
        (
            starts[4] - datetime.timedelta(days=3),
            starts[4] + datetime.timedelta(days=3),
        ),  # across a month start
        (LAST_DAY, None),  # no unit boundary after these within what a datetime holds
        (None, LAST_DAY),
        (FIRST_DAY, LAST_DAY),
    ]


LAST_DAY = datetime.datetime(9999, 12, 31, 23, tzinfo=datetime.UTC)
FIRST_DAY = datetime.datetime(1, 1, 1, 1, tzinfo=datetime.UTC)


ROLLUP_FILTERS = [
    {},
    {"status": ["resolved", "closed"]},
    {"status": ["closed"], "severity": ["low", "critical"]},
    {"status": ["open", "in_progress"]},
    {"severity": ["medium"], "assignee_id": None},
    {"source": ["api"], "status": ["resolved", "in_progress"]},
    {"source": ["alertmanager"]},
    {"category_id": 0},
    {"category_id": 1},
    {"category_id": 0, "status": ["resolved", "closed"]},
    {"category_id": 0, "status": ["closed"], "severity": ["low", "critical"]},
    {"category_id": 1, "status": ["open", "in_progress"]},
    {"category_id": 1, "severity": ["medium"], "assignee_id": None},
    {"category_id": 0, "source": ["api"], "status": ["resolved", "in_progress"]},
]


@pytest.mark.parametrize("filters", ROLLUP_FILTERS, ids=str)
def test_rollups_say_what_the_general_query_says(queries, db_conn, spread, filters):
    if "category_id" in filters:  # the n-th category of the spread
        filters = {**filters, "category_id": categories(db_conn)[filters["category_id"]]}
    for after, before in [(None, None), *ranges(*spread)]:
        args = {**filters, "created_after": after, "created_before": before}
        args = {name: value for name, value in args.items() if value is not None or name == "assignee_id"}
        for days in (1, 45, 3660):
            general = queries.incident_stats(db_conn, **incident_filters(args), days=days)
            rolled = queries.incident_stats_rollup(db_conn, **stats_span(args), days=days)
            assert_same(general, rolled, f"{args} days={days}")
    assert sum(general["by_status"].values()) > 0 or filters == {"source": ["alertmanager"]}


def test_rollups_follow_every_change(queries, db_conn, spread):
    """Resolving, closing, reopening, reassigning, moving and deleting incidents keeps the
    rollups equal to a rebuild (assert_consistent), and the figures equal to the general query's."""
    changes = [
        "UPDATE incidents SET status = 'resolved', resolved_at = acknowledged_at + interval '1 hour'"
        " WHERE status = 'in_progress' AND id % 2 = 0",
        "UPDATE incidents SET status = 'closed' WHERE status = 'resolved' AND id % 3 = 0",
        "UPDATE incidents SET status = 'open', resolved_at = NULL WHERE status = 'closed' AND id % 5 = 1",
        "UPDATE incidents SET assignee_id = NULL WHERE id % 4 = 1",
        "UPDATE incidents SET severity = 'critical', source = 'alerts' WHERE id % 6 = 0",
        "UPDATE incidents SET created_at = created_at - interval '20 days',"
        " acknowledged_at = acknowledged_at - interval '20 days' WHERE id % 7 = 0",
        "DELETE FROM incidents WHERE id % 8 = 3",
        "DELETE FROM incident_categories WHERE incident_id % 5 = 2",
        "INSERT INTO incident_categories (incident_id, category_id)"
        " SELECT id, (SELECT min(id) FROM categories) FROM incidents WHERE id % 5 = 2",
        "DELETE FROM categories WHERE id = (SELECT max(id) FROM categories)",
    ]
    starts, midnights, inside = spread
    first = categories(db_conn)[0]
    for statement in changes:
        db_conn.execute(statement)
        assert_consistent(queries, db_conn)
        for args in (
            {"status": ["resolved", "closed"], "created_after": inside[1]},
            {"assignee_id": None},
            {"category_id": first, "created_after": inside[1]},
            {"category_id": first, "status": ["closed"], "assignee_id": None},
        ):
            general = queries.incident_stats(db_conn, **incident_filters(args), days=90)
            assert_same(general, queries.incident_stats_rollup(db_conn, **stats_span(args), days=90))


def test_a_range_splits_into_whole_units_and_exact_ends():
    utc = datetime.UTC
    at = lambda *parts: datetime.datetime(*parts, tzinfo=utc)  # noqa: E731
    month = stats_span({"created_after": at(2025, 1, 20, 5), "created_before": at(2025, 3, 4)})
    assert (month["months_from"], month["months_to"]) == (
        datetime.date(2025, 2, 1),
        datetime.date(2025, 3, 1),
    )
    assert (month["month_edge_from"], month["month_edge_to"], month["month_edge_sign"]) == (
        at(2025, 1, 20, 5),
        at(2025, 2, 1),
        1,
    )
    assert (month["month_edge2_from"], month["month_edge2_to"], month["month_edge2_sign"]) == (
        at(2025, 3, 1),
        at(2025, 3, 4),
        1,
    )
    assert (month["days_from"], month["days_to"]) == (datetime.date(2025, 1, 21), datetime.date(2025, 3, 4))
    assert (month["day_edge_from"], month["day_edge_to"]) == (at(2025, 1, 20, 5), at(2025, 1, 21))
    assert month["day_edge2_from"] is None
    rounded_up = split(None, at(2025, 12, 20), lambda t: t.replace(day=1), None, ("nearest", "nearest"))
    assert rounded_up == (True, None, at(2026, 1, 1), [(at(2025, 12, 20), at(2026, 1, 1), -1)])
    one_day = stats_span({"created_after": at(2025, 1, 10, 5), "created_before": at(2025, 1, 10, 7)})
    assert (one_day["days_any"], one_day["months_any"]) == (False, False)
    assert (one_day["day_edge_from"], one_day["day_edge_to"]) == (at(2025, 1, 10, 5), at(2025, 1, 10, 7))


def test_rollups_stay_exact_under_concurrent_changes(queries, db_conn, database_url, spread, make_category):
    """Transactions moving resolved and closed incidents between the same rollup rows at once
    (each upsert waits for the row's other writer), taking them out of categories and putting
    them back, and a category deleted meanwhile, leave the rollups equal to a rebuild."""
    ids = [
        row["id"]
        for row in db_conn.execute("SELECT id FROM incidents WHERE status IN ('resolved', 'closed')")
    ]
    doomed = make_category()["id"]
    db_conn.execute(
        "INSERT INTO incident_categories (incident_id, category_id) SELECT id, %s FROM incidents", [doomed]
    )
    linked = categories(db_conn)
    before, failures = rollups(db_conn), []

    def change(seed):
        rng = random.Random(seed)
        with connect(database_url) as conn:
            for _ in range(40):
                with conn.transaction():
                    conn.execute(
                        "UPDATE incidents SET severity = %s, assignee_id = NULL WHERE id = %s",
                        [rng.choice(SEVERITIES), rng.choice(ids)],
                    )

    def relink(seed):
        rng = random.Random(seed)
        with connect(database_url) as conn:
            for _ in range(40):
                incident, category = rng.choice(ids), rng.choice(linked)
                with conn.transaction():
                    gone = conn.execute(
                        "DELETE FROM incident_categories WHERE incident_id = %s AND category_id = %s",
                        [incident, category],
                    ).rowcount
                if not gone:
                    with contextlib.suppress(psycopg.errors.ForeignKeyViolation), conn.transaction():
                        conn.execute(  # the category may have just been deleted
                            "INSERT INTO incident_categories (incident_id, category_id) VALUES (%s, %s)"
                            " ON CONFLICT DO NOTHING",
                            [incident, category],
                        )

    def delete_category():
        with connect(database_url) as conn:
            conn.execute("SELECT pg_sleep(0.2)")
            conn.execute("DELETE FROM categories WHERE id = %s", [doomed])

    def reported(work, *args):
        try:
            work(*args)
        except Exception as failure:  # noqa: BLE001 (reported below, from the test's thread)
            failures.append(failure)

    workers = [threading.Thread(target=reported, args=(change, seed)) for seed in range(6)]
    workers += [threading.Thread(target=reported, args=(relink, seed)) for seed in range(3)]
    workers.append(threading.Thread(target=reported, args=(delete_category,)))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    assert rollups(db_conn) != before
    assert (
        db_conn.execute(
            "SELECT count(*) AS n FROM incident_stats_category_days WHERE category_id = %s", [doomed]
        ).fetchone()["n"]
        == 0
    )
    assert_consistent(queries, db_conn)


def test_crossing_category_changes_do_not_deadlock(
    queries, db_conn, database_url, reporter, make_category, now
):
    """Resolved incidents that share every rollup key moved between two categories at once, in
    opposite directions, through set_incident_categories (unlinks, then links): the API locks
    the rows first (lock_category_rollups), in key order, so no two changes wait for each other."""
    first, second = make_category()["id"], make_category()["id"]
    created = now - datetime.timedelta(days=3)
    ids = [
        db_conn.execute(
            "INSERT INTO incidents (title, severity, status, reporter_id, created_at, acknowledged_at, resolved_at)"
            " VALUES ('t', 'high', 'resolved', %s, %s, %s, %s) RETURNING id",
            [
                reporter["id"],
                created,
                created + datetime.timedelta(seconds=30),
                created + datetime.timedelta(hours=1),
            ],
        ).fetchone()["id"]
        for _ in range(12)
    ]
    for incident in ids:
        queries.set_incident_categories(db_conn, id=incident, category_ids=[first])
    failures = []

    def move(seed):
        rng = random.Random(seed)
        try:
            with connect(database_url) as conn:
                for _ in range(30):
                    with conn.transaction():
                        incident = rng.choice(ids)
                        conn.execute("SELECT 1 FROM incidents WHERE id = %s FOR UPDATE", [incident])
                        target = rng.choice([[first], [second], [second, first]])
                        queries.lock_category_rollups(
                            conn, id=incident, category_ids=target
                        )  # as the API does
                        queries.set_incident_categories(conn, id=incident, category_ids=target)
        except Exception as failure:  # noqa: BLE001 (reported below, from the test's thread)
            failures.append(failure)

    workers = [threading.Thread(target=move, args=(seed,)) for seed in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    assert_consistent(queries, db_conn)
