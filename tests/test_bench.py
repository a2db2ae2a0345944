"""The bench covers every list, search and stats query, and runs end to end (at a tiny scale)."""

import asyncio
import datetime
import os
import shutil

import pytest

from api.db import connect
from api.resources.analytics import STATS_PARAMETERS
from api.sql import load_queries
from bench import explain, scaling, seed, stats_filters
from tests.fix_db import scratch_database
from tests.fix_pgbouncer import require_pgbouncer


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


def scaling_rows(rounds=2):
    """Rows as scaling.run_round makes them: PgBouncer in session mode 1.5 times as fast as
    direct, in transaction mode twice; 2 instances twice 1; the replica takes 3/4 of the
    primary's CPU off a list."""
    speed = {"direct": 100, "pgbouncer-session": 150, "pgbouncer-txn": 200, "pgbouncer-txn+replica": 200}
    rows = []
    for n in range(1, rounds + 1):
        for topology in scaling.TOPOLOGIES:
            replica = topology.name.endswith("+replica")
            for count in scaling.INSTANCES:
                for endpoint in topology.endpoints:
                    figures = dict.fromkeys(["p50_ms", "p99_ms", "errors", "busy_max", "lag_bytes_max"], 1)
                    rows.append(
                        {
                            "round": n,
                            "topology": topology.name,
                            "instances": count,
                            "endpoint": endpoint,
                            **figures,
                            "rps": speed[topology.name] * count * n,
                            "backends_max": 4 * count,
                            "replay_lag_p99_ms": 2.0,
                            **{f"cpu_{group}_us": 100.0 for group in scaling.GROUPS},
                            "cpu_primary_us": 250.0 if replica else 1000.0,
                            "cpu_total_us": 1000.0 / speed[topology.name],
                        }
                    )
    return rows


def test_scaling_report_shows_every_configuration_and_its_ratios_within_rounds():
    figures = {"kill_to_201_s": 2.3, "promote_to_201_s": 0.3, "answers_503": 2, "other_errors": 0}
    report = scaling.report(scaling_rows(), [{**figures, "slowest_503_s": 0.6}])
    for topology in scaling.TOPOLOGIES:
        for count in scaling.INSTANCES:
            for endpoint in topology.endpoints:
                assert f"| {topology.name} | {count} | `{endpoint}` |" in report
    for endpoint in scaling.ENDPOINTS:
        assert f"| `{endpoint}` | 1 | 1.50 | 2.00 | 0.67 | 0.50 |" in report
        assert f"| `{endpoint}` | 2 | 1.50 | 2.00 | 0.67 | 0.50 | 2.00 | 2.00 | 2.00 |" in report
    assert "| 1 | 1.00 | 1,000 | 250 | 0.25 | 100 |" in report  # the replica takes the list
    assert "| pgbouncer-txn | 2 | 600 | 2.0 | 2.0 | 1 |" in report  # replay lag under POST
    assert "| median | 2.30 | 0.30 | 2 | 0.600 | 0 |" in report


def test_failover_figures_count_from_the_kill_and_the_promotion():
    writer = scaling.Writer(0, "token")
    writer.answers = [
        (9.0, 9.1, 201),
        (10.1, 10.2, 503),
        (10.3, 10.9, 503),
        (11.9, 12.05, 201),
        (12.1, 12.3, 201),
    ]
    figures = scaling.failover_figures(writer, killed=10.0, promoted=12.0)
    assert figures["kill_to_201_s"] == pytest.approx(2.3) and figures["promote_to_201_s"] == pytest.approx(
        0.3
    )
    assert (figures["answers_503"], figures["other_errors"]) == (2, 0)
    assert figures["slowest_503_s"] == pytest.approx(0.6)


def test_scaling_bench_measures_replica_reads_through_pgbouncer():
    """A tiny run of the real thing: two instances reading the list from the replica through
    PgBouncer, each process group's CPU and the primary's backends counted; then the POST run's
    incidents forgotten on both servers, and no backend left."""
    require_pgbouncer()
    if shutil.which("wrk") is None:
        if os.environ.get("CI"):
            pytest.fail("wrk is missing in CI")
        pytest.skip("wrk is missing: sudo apt-get install wrk")
    with (
        scaling.workdir() as base,
        scaling.running_stack(base / "stack", scale=0.0005) as (stack, token, bodies),
    ):
        with scaling.apps(stack.app_env("pgbouncer-txn+replica"), 2, base / "gunicorn.log") as running:
            listed = scaling.measure(stack, running, bodies[scaling.LIST], token, seconds=1)
            posted = scaling.measure(stack, running, bodies[scaling.POST], token, seconds=1)
        assert listed["requests"] > 0 and posted["requests"] > 0
        assert listed["errors"] == 0 and posted["errors"] == 0
        assert listed["cpu_replica_us"] > listed["cpu_primary_us"]  # the list read the replica
        assert posted["cpu_primary_us"] > posted["cpu_replica_us"]
        assert listed["cpu_pgbouncer_us"] > 0 and listed["cpu_app_us"] > 0
        assert 1 <= posted["backends_max"] <= 2 * 2 * 4  # instances × workers × pool size
        stack.forget_writes()
        stack.drop_server_connections()
        with connect(stack.primary.url("postgres")) as conn:
            assert scaling.app_backends(conn) == 0
        with connect(stack.replica.url()) as conn:  # gone from the replica too: replayed
            assert (
                conn.execute(
                    "SELECT count(*) AS n FROM incidents WHERE title = 'Load test incident'"
                ).fetchone()["n"]
                == 0
            )
