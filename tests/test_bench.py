"""The bench covers every list, search and stats query, and runs end to end (at a tiny scale)."""

import asyncio
import datetime

from api.db import connect
from api.resources.analytics import STATS_PARAMETERS
from api.sql import load_queries
from bench import explain, seed, stats_filters
from tests.fix_db import scratch_database


def bench_cases():
    ids = dict.fromkeys(
        [
            "assignee",
            "reporter",
            "responder",
            "category",
            "common_category",
            "incident",
            "notified",
            "followed",
            "follower",
            "unreferenced",
        ],
        1,
    )
    return explain.cases(load_queries(), ids, {"after_value": "2026-01-01T00:00:00+00:00", "after_id": 1})


def test_bench_explains_every_list_search_and_stats_query():
    queries = load_queries()
    behind_endpoints = {name for name in queries if name.startswith(("list_", "search_", "incident_stats"))}
    assert behind_endpoints <= {name for _, name, _, _ in bench_cases()}


def test_seed_and_explain_at_a_tiny_scale(server_url):
    with scratch_database(server_url) as url:
        steps = seed.seed(url, scale=0.0005)
        counts = {step: rows for step, rows, _ in steps}
        assert counts["seed_incidents"] == 500 and counts["seed_comments"] == 1000
        assert counts["seed_users"] == 20
        results = explain.run(url)
        report = explain.report(*results)
        with connect(url) as conn:
            raw_cases = stats_filters.cases(stats_filters.probes(conn), datetime.datetime.now(datetime.UTC))
        timed = asyncio.run(stats_filters.time_cases(url, raw_cases, runs=1))
    stats_report = stats_filters.report(timed, {"incidents": 500, "version": "PostgreSQL"})
    assert stats_report.count("| `?") == len(raw_cases)
    assert report.count("### ") == len(bench_cases())
    assert "| `incidents_search_idx` |" in report
    for title, _, _, _ in bench_cases():
        assert f"| {title} |" in report


def test_stats_bench_covers_every_stats_parameter():
    """Every query parameter of GET /incidents/stats, and `assignee_id=none`, has a bench case:
    a new filter without one fails here."""
    now = datetime.datetime.now(datetime.UTC)
    ids = {"reporter": 1, "assignee": 2, "common_category": 3, "rare_category": 4}
    raw_cases = stats_filters.cases(ids, now)
    assert set().union(*raw_cases) == set(STATS_PARAMETERS)
    assert {"assignee_id": "none"} in raw_cases
    assert any(case.get("days") == str(STATS_PARAMETERS["days"].schema["maximum"]) for case in raw_cases)
    for case in raw_cases:  # each one a valid request
        assert stats_filters.parsed(case).keys() == case.keys()
