"""make bench, step 3: GET /incidents/stats for every filter, alone and combined, against the
seeded bench database, timed as the endpoint runs it (api.resources.analytics.incident_stats on
a connection set up like the app's), into bench/results/stats_filters.md, slowest first
(python -m bench.stats_filters)."""

import asyncio
import datetime
import os
import pathlib
import statistics
import time
import urllib.parse

import psycopg
from psycopg.rows import dict_row

from api.db import connect
from api.resources.analytics import STATS_PARAMETERS, incident_stats
from api.sql import load_queries
from bench import database

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "stats_filters.md"
RUNS = int(os.environ.get("RUNS", 5))
BUDGET_MS = 300


def probes(conn):
    """Real ids for the selective filters: the busiest reporter and assignee, the most common and
    the rarest category."""
    one = lambda text: conn.execute(text).fetchone()["id"]  # noqa: E731
    return {
        "reporter": one("SELECT reporter_id AS id FROM incidents GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"),
        "assignee": one(
            "SELECT assignee_id AS id FROM incidents WHERE assignee_id IS NOT NULL "
            "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ),
        "common_category": one(
            "SELECT category_id AS id FROM incident_categories GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ),
        "rare_category": one(
            "SELECT category_id AS id FROM incident_categories GROUP BY 1 ORDER BY count(*) LIMIT 1"
        ),
    }


def cases(ids, now):
    """Query strings of GET /incidents/stats: each filter alone, the widest forms of each (that
    match every incident), and realistic combinations, with `days` up to its maximum."""
    ago = lambda days: (now - datetime.timedelta(days=days)).isoformat().replace("+00:00", "Z")  # noqa: E731
    epoch, future = "1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z"
    reporter, assignee = ids["reporter"], ids["assignee"]
    common, rare = ids["common_category"], ids["rare_category"]
    every_status, every_severity = "open,in_progress,resolved,closed", "low,medium,high,critical"
    return [
        {},
        {"days": "3660"},
        {"status": "open"},
        {"status": "closed"},
        {"status": "resolved,closed"},
        {"status": every_status},
        {"severity": "critical"},
        {"severity": "medium"},
        {"severity": every_severity},
        {"reporter_id": reporter},
        {"assignee_id": assignee},
        {"assignee_id": "none"},
        {"category_id": common},
        {"category_id": rare},
        {"created_after": epoch},
        {"created_after": epoch, "days": "3660"},
        {"created_after": ago(365)},
        {"created_after": ago(30)},
        {"created_after": ago(-1)},
        {"created_before": future},
        {"created_before": ago(365)},
        {"created_before": ago(700)},
        {"created_after": epoch, "created_before": future, "days": "3660"},
        {"created_after": ago(729), "created_before": ago(1), "days": "3660"},
        {"status": every_status, "severity": every_severity, "created_after": epoch, "days": "3660"},
        {
            "status": "resolved,closed",
            "severity": "low,medium,high",
            "created_after": ago(700),
            "days": "3660",
        },
        {"status": "closed", "severity": "medium", "created_after": ago(365)},
        {"severity": "critical", "created_after": ago(90), "days": "90"},
        {"status": "open", "assignee_id": "none"},
        {"assignee_id": "none", "created_before": ago(365), "days": "3660"},
        {"assignee_id": assignee, "status": "open,in_progress"},
        {"reporter_id": reporter, "created_after": epoch, "days": "3660"},
        {"reporter_id": reporter, "category_id": common},
        {"category_id": common, "created_after": epoch, "days": "3660"},
        {"category_id": common, "status": "closed", "severity": "medium"},
        {"category_id": common, "assignee_id": "none"},
        {"category_id": common, "created_after": ago(365), "created_before": ago(30)},
        {"category_id": rare, "status": "resolved", "severity": "high", "days": "3660"},
        {"source": "alertmanager"},
        {"source": "api,alerts,alertmanager"},
        {"source": "alerts", "status": "open,in_progress"},
        {"dedup_key": "srv01/mysql"},
    ]


def parsed(raw):
    """The query string's parameters as the endpoint parses them (str() of the probed ids)."""
    return {name: STATS_PARAMETERS[name](str(value)) for name, value in raw.items()}


def query_string(raw):
    return urllib.parse.urlencode({name: str(value) for name, value in raw.items()}, safe=":,")


async def time_cases(url, raw_cases, runs=RUNS):
    """[(query string, median ms, fastest ms, slowest ms)] over `runs` warm runs of each case
    (after one untimed run), each run a fresh call of the endpoint's function. The runs go
    round the cases (every case once per round), so that a burst of load from elsewhere on the
    machine falls on many cases once rather than on one case every time."""
    queries = load_queries()
    every = [parsed(raw) for raw in raw_cases]
    timings = [[] for _ in raw_cases]
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row, options="-c TimeZone=UTC -c jit=off"
    ) as conn:
        for args in every:
            await incident_stats(queries, conn, args)
        for _ in range(runs):
            for args, spent in zip(every, timings, strict=True):
                started = time.perf_counter()
                await incident_stats(queries, conn, args)
                spent.append((time.perf_counter() - started) * 1000)
    return [
        (query_string(raw), statistics.median(spent), min(spent), max(spent))
        for raw, spent in zip(raw_cases, timings, strict=True)
    ]


def report(results, counts):
    ranked = sorted(results, key=lambda r: r[1], reverse=True)
    worst = ranked[0]
    lines = [
        "# GET /incidents/stats: every filter, alone and combined",
        "",
        f"**Worst case: `?{worst[0]}` in {worst[1]:.1f} ms** (median); budget {BUDGET_MS} ms; "
        f"{sum(r[1] >= BUDGET_MS for r in results)} of {len(results)} cases over it.",
        "",
        f"Written by `python -m bench.stats_filters` on {datetime.date.today()} against "
        f"{counts['incidents']:,} incidents ({counts['version'].split(' on ')[0]}), the machine's load "
        f"average {counts.get('load', 0):.1f} on {os.cpu_count()} cores as it started. Each case is the "
        f"endpoint's own database work (`incident_stats` in api/resources/analytics.py, round trips "
        f"included), run once untimed and then {RUNS} times, round the cases: the median, fastest and slowest run in ms, "
        "slowest case first. Ids are the busiest reporter and assignee and the most common and "
        "rarest category; dates are relative to the run.",
        "",
        "| request | median (ms) | fastest | slowest |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| `?{qs}` | {median:.1f} | {low:.1f} | {high:.1f} |" for qs, median, low, high in ranked]
    return "\n".join(lines) + "\n"


def main():
    if database.seeded_scale() is None:
        raise SystemExit(f"{database.NAME} is not seeded: run `make bench` (or python -m bench.seed) first")
    url = database.bench_url()
    with connect(url) as conn:
        ids = probes(conn)
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM incidents) AS incidents, version() AS version"
        ).fetchone()
    counts["load"] = os.getloadavg()[0]
    results = asyncio.run(time_cases(url, cases(ids, datetime.datetime.now(datetime.UTC))))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report(results, counts))
    print(RESULTS.read_text().splitlines()[2])


if __name__ == "__main__":
    main()
