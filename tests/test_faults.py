"""Database faults under write traffic: a real gunicorn on a private cluster that is stopped
with `pg_ctl stop -m immediate` (a crash) and started again, twice. While it is down every
request is a quick 503 with Retry-After and /health says the database is unreachable; the
service recovers by itself; every acknowledged write is there, and nothing is half there."""

import collections
import dataclasses
import threading
import time

import pytest

from api.cli import migrate, pgcluster
from api.config import Config
from api.db import IDLE_CHECK_SECONDS, connect
from api.sql import load_queries
from tests.fix_app import bearer_of_new_user, client_of
from tests.fix_db import scratch_database
from tests.fix_server import call, gunicorn, wait_until
from tests.test_errors import set_connections_allowed

OUTAGES, OUTAGE_SECONDS = 2, 4
WRITERS = 4
# NOTE: synchronous_commit stays on, so a crash loses no acknowledged commit (as in production);
# without fsync a crash of PostgreSQL, unlike one of the machine, loses nothing either.
CRASH_SAFE = ("-c fsync=off",)


@dataclasses.dataclass
class Attempt:
    title: str
    started: float
    ended: float
    status: int | None  # None: no HTTP answer at all
    retry_after: str | None = None


@pytest.fixture
def crashable(tmp_path):
    """A private cluster that may crash, migrated, with an admin token and a category."""
    with pgcluster.throwaway_cluster(CRASH_SAFE) as cluster:
        url = cluster.url()
        migrate.apply(url)
        queries = load_queries()
        with connect(url) as conn:
            headers = bearer_of_new_user(conn, "admin")
            category = queries.create_category(conn, name="storage")
        yield cluster, url, headers, category["id"]


def report(base, headers, category_id, title):
    return call(
        "POST",
        base + "/incidents",
        {"title": title, "category_ids": [category_id]},
        {**headers, "Idempotency-Key": title},
    )


def write_until(stop, base, headers, category_id, writer, attempts):
    for n in range(10**6):
        if stop.is_set():
            return
        title, started = f"writer-{writer}-{n}", time.monotonic()
        try:
            reply = report(base, headers, category_id, title)
            attempts.append(
                Attempt(title, started, time.monotonic(), reply.status, reply.headers.get("retry-after"))
            )
        except OSError:
            attempts.append(Attempt(title, started, time.monotonic(), None))
        if attempts[-1].status != 201:
            time.sleep(0.1)  # a client that waited the whole Retry-After would not test failing fast


def poll_health(stop, base, health):
    while not stop.is_set():
        started = time.monotonic()
        reply = call("GET", base + "/ready")
        health.append((started, time.monotonic(), reply))
        time.sleep(0.1)


def test_database_crashes_under_write_traffic_lose_nothing_acknowledged(crashable, tmp_path):
    cluster, url, headers, category_id = crashable
    log_path = tmp_path / "gunicorn.log"
    attempts, health, outages, stop = [], [], [], threading.Event()
    with gunicorn(url, log_path) as (base, process):
        threads = [
            threading.Thread(target=write_until, args=(stop, base, headers, category_id, n, attempts))
            for n in range(WRITERS)
        ] + [threading.Thread(target=poll_health, args=(stop, base, health))]
        for thread in threads:
            thread.start()
        try:
            for _ in range(OUTAGES):
                time.sleep(1.5)
                cluster.stop(mode="immediate")
                down = time.monotonic()
                time.sleep(OUTAGE_SECONDS)
                up = time.monotonic()
                cluster.start(*CRASH_SAFE)
                wait_until(
                    lambda up=up: any(a.status == 201 and a.started > up for a in attempts),
                    10,
                    "the service did not recover by itself within 10 s",
                )
                outages.append((down, up))
            time.sleep(1)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        assert process.poll() is None
        retried = {a.title: report(base, headers, category_id, a.title) for a in attempts if a.status != 201}

    assert_outages_answered_quickly(attempts, health, outages)
    assert_nothing_acknowledged_lost_nor_half_written(url, attempts, retried)
    log = log_path.read_text()
    assert log.count("Booting worker") == 2, "a worker was restarted"
    assert "Traceback" not in log


def during(outages, started, ended):
    """Whether a request ran wholly while the database was down."""
    return any(down < started and ended < up for down, up in outages)


def assert_outages_answered_quickly(attempts, health, outages):
    assert {a.status for a in attempts} <= {201, 503}, collections.Counter(a.status for a in attempts)
    failed = [a for a in attempts if a.status == 503]
    assert failed and all(a.retry_after and int(a.retry_after) > 0 for a in failed)
    in_outage = [a for a in attempts if during(outages, a.started, a.ended)]
    assert in_outage and all(a.status == 503 for a in in_outage)
    assert max(a.ended - a.started for a in attempts) < 3
    quick = sorted(a.ended - a.started for a in in_outage)
    assert quick[len(quick) // 2] < 0.5, "requests waited instead of failing fast"
    down_checks = [reply for started, ended, reply in health if during(outages, started, ended)]
    assert down_checks and all(
        reply.status == 503 and reply.body["database"] == "unreachable" and reply.headers["retry-after"]
        for reply in down_checks
    )
    assert health[-1][2].status == 200


def assert_nothing_acknowledged_lost_nor_half_written(url, attempts, retried):
    assert all(reply.status == 201 for reply in retried.values())
    with connect(url) as conn:
        titles = collections.Counter(row["title"] for row in conn.execute("SELECT title FROM incidents"))
        half_written = conn.execute("""
            SELECT count(*) AS n FROM incidents i
            WHERE (SELECT count(*) FROM incident_history h WHERE h.incident_id = i.id) <> 1
               OR (SELECT count(*) FROM incident_categories c WHERE c.incident_id = i.id) <> 1
               OR NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.key = i.title)""").fetchone()["n"]
    assert half_written == 0
    assert set(titles) == {a.title for a in attempts} and set(titles.values()) == {1}


def test_once_the_database_is_known_down_requests_fail_at_once_and_recover(server_url):
    with scratch_database(server_url) as url:
        migrate.apply(url)
        config = Config(database_url=url, pool_timeout=5)
        with client_of(config) as client:
            set_connections_allowed(server_url, url, False)
            started = time.monotonic()
            replies = [client.simulate_get("/ready") for _ in range(20)]
            assert time.monotonic() - started < config.pool_timeout  # not one full pool timeout in all
            assert all(
                r.status_code == 503 and r.json["database"] == "unreachable" and r.headers["retry-after"]
                for r in replies
            )
            set_connections_allowed(server_url, url, True)
            wait_until(
                lambda: client.simulate_get("/ready").status_code == 200,
                10,
                "the app did not reconnect by itself",
            )


def test_a_connection_idle_across_a_restart_is_replaced_before_use(crashable):
    """Pooled connections are pinged only after IDLE_CHECK_SECONDS idle, so the first request
    after a quiet restart of PostgreSQL is served, not failed on the dead connection."""
    cluster, url, headers, _ = crashable
    with client_of(Config(database_url=url)) as client:
        assert client.simulate_get("/incidents", headers=headers).status_code == 200
        cluster.stop(mode="immediate")
        cluster.start(*CRASH_SAFE)
        time.sleep(IDLE_CHECK_SECONDS)
        assert client.simulate_get("/incidents", headers=headers).status_code == 200
