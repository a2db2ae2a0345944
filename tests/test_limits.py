"""Limits: a slow statement is a 503, pages and query strings are bounded, any cursor the API
did not give is a 400, gunicorn's timeouts sit above the app's own, and SIGTERM lets the
requests in flight finish."""

import base64
import logging
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

import falcon.testing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.config import Config, ConfigError
from api.db import connect
from api.params import MAX_QUERY_STRING
from tests.fix_app import client_of
from tests.fix_server import ROOT, call, gunicorn, lock_waiters, only_connection_held, row_locked, wait_until

STATEMENT_TIMEOUT_MS = 300


@pytest.fixture(scope="module")
def impatient_client(database_url):
    """A client of an app whose statements time out after STATEMENT_TIMEOUT_MS."""
    config = Config(database_url=database_url, statement_timeout_ms=STATEMENT_TIMEOUT_MS, pool_timeout=2)
    with client_of(config) as client:
        yield client


def test_a_statement_over_statement_timeout_is_503_and_writes_nothing(
    impatient_client, database_url, db_conn, reporter, make_incident
):
    incident = make_incident(reporter, title="before")
    with row_locked(database_url, "incidents", incident["id"]):
        started = time.monotonic()
        result = impatient_client.simulate_patch(
            f"/incidents/{incident['id']}", json={"title": "after"}, headers=reporter["headers"]
        )
        elapsed = time.monotonic() - started
    assert result.status_code == 503
    assert result.headers["content-type"] == "application/problem+json"
    assert result.json["title"] == "Request took too long"
    assert int(result.headers["retry-after"]) > 0
    assert STATEMENT_TIMEOUT_MS / 1000 <= elapsed < 2
    row = db_conn.execute("SELECT title, version FROM incidents").fetchone()
    assert row == {"title": "before", "version": 1}
    assert db_conn.execute("SELECT count(*) AS n FROM incident_history").fetchone()["n"] == 1
    # a slow statement is no outage: the next request is served at once
    assert impatient_client.simulate_get("/ready").status_code == 200


def test_a_request_that_deadlocks_with_another_transaction_is_503_and_writes_nothing(
    client, database_url, db_conn, responder, make_incident
):
    """The PATCH locks its incident and then waits to check its assignee, whom another
    transaction holds and which then waits for the incident: PostgreSQL undoes one of them."""
    incident = make_incident(responder, title="before")
    replies = []
    with connect(database_url) as other, other.transaction():
        other.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", [responder["id"]])
        patch = threading.Thread(
            target=lambda: replies.append(
                client.simulate_patch(
                    f"/incidents/{incident['id']}",
                    json={"title": "after", "assignee_id": responder["id"]},
                    headers=responder["headers"],
                )
            )
        )
        patch.start()
        wait_until(lambda: lock_waiters(db_conn) == 1, 10, "the PATCH never waited for the assignee")
        other.execute("SELECT 1 FROM incidents WHERE id = %s FOR UPDATE", [incident["id"]])
    patch.join()
    (result,) = replies
    assert result.status_code == 503
    assert result.json["title"] == "Concurrent change"
    assert int(result.headers["retry-after"]) > 0
    assert db_conn.execute("SELECT title, version FROM incidents").fetchone() == {
        "title": "before",
        "version": 1,
    }
    assert client.simulate_get("/ready").status_code == 200  # a deadlock is no outage


def test_a_busy_pool_is_503_after_pool_timeout_and_no_outage(database_url, db_conn, reporter, make_incident):
    """Every connection out with a request (here the only one, waiting on a row lock): the next
    request waits POOL_TIMEOUT for its turn, then answers 503; the one after that is served."""
    incident = make_incident(reporter)
    config = Config(database_url=database_url, pool_min_size=1, pool_max_size=1, pool_timeout=1)

    async def run(app):
        async with falcon.testing.ASGIConductor(app) as conductor:
            async with only_connection_held(conductor, database_url, db_conn, incident, reporter) as holder:
                started = time.monotonic()
                waiter = await conductor.simulate_get("/incidents", headers=reporter["headers"])
                waited = time.monotonic() - started
            return (
                waiter,
                waited,
                await holder,
                await conductor.simulate_get("/incidents", headers=reporter["headers"]),
            )

    with client_of(config) as client:
        waiter, waited, held, after = falcon.async_to_sync(run, client.app)
    assert waiter.status_code == 503 and int(waiter.headers["retry-after"]) > 0
    assert "overloaded" in waiter.json["detail"]
    assert 1 <= waited < 2
    assert held.status_code == 200 and after.status_code == 200


# --- Pages and query strings --------------------------------------------------------------


def test_pages_hold_50_by_default_and_200_at_most(client, db_conn, reporter):
    db_conn.execute(
        "INSERT INTO incidents (title, reporter_id) SELECT 'i' || n, %s FROM generate_series(1, 201) n",
        [reporter["id"]],
    )
    default = client.simulate_get("/incidents", headers=reporter["headers"]).json
    largest = client.simulate_get("/incidents", query_string="limit=200", headers=reporter["headers"]).json
    assert (len(default["items"]), len(largest["items"])) == (50, 200)
    assert largest["next_cursor"] is not None
    result = client.simulate_get("/incidents", query_string="limit=201", headers=reporter["headers"])
    assert result.status_code == 400 and result.json["errors"][0]["parameter"] == "limit"


def test_a_query_string_over_4096_bytes_is_400_naming_its_longest_parameter(client, reporter):
    def search(length):
        statuses = "&status=open" + ",open" * 700
        query = "query=" + "d" * (length - len("query=") - len(statuses)) + statuses
        assert len(query) == length
        return client.simulate_get("/incidents/search", query_string=query, headers=reporter["headers"])

    assert search(MAX_QUERY_STRING).status_code == 200
    result = search(MAX_QUERY_STRING + 1)
    assert result.status_code == 400
    assert result.headers["content-type"] == "application/problem+json"
    assert result.json["errors"][0]["parameter"] == "status"
    assert "4096" in result.json["errors"][0]["detail"]


LISTS = [
    "/incidents",
    "/incidents?sort=severity",
    "/users",
    "/categories",
    "/notifications",
    "/incidents/search?query=disk",
    "/incidents/1/comments",
    "/incidents/1/history",
    "/users/1/followers",
    "/categories/1/incidents",
]


def assert_bad_cursor(client, user, path, cursor):
    path, _, query = path.partition("?")
    query_string = "&".join(filter(None, [query, urllib.parse.urlencode({"cursor": cursor})]))
    result = client.simulate_get(path, query_string=query_string, headers=user["headers"])
    assert result.status_code == 400, (path, cursor, result.text)
    assert result.headers["content-type"] == "application/problem+json"
    assert [error["parameter"] for error in result.json["errors"]] == ["cursor"]


@pytest.fixture
def lister(admin, make_incident, make_category):
    """An admin, with incident 1 and category 1 for the nested lists."""
    assert (make_incident(admin)["id"], make_category()["id"], admin["id"]) == (1, 1, 1)
    return admin


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("path", LISTS)
@FUZZ
@given(raw=st.binary(max_size=400))
def test_any_cursor_of_random_bytes_is_400(client, lister, path, raw):
    assert_bad_cursor(client, lister, path, base64.urlsafe_b64encode(raw).rstrip(b"=").decode())


@pytest.mark.parametrize("path", LISTS)
@FUZZ
@given(text=st.text(min_size=1, max_size=600))
def test_any_cursor_of_random_text_is_400(client, lister, path, text):
    assert_bad_cursor(client, lister, path, text)


# --- gunicorn -----------------------------------------------------------------------------


def gunicorn_settings(monkeypatch, **env):
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_timeouts_exceed_the_longest_wait_of_a_request(monkeypatch):
    monkeypatch.delenv("GUNICORN_TIMEOUT", raising=False)
    monkeypatch.delenv("GUNICORN_GRACEFUL_TIMEOUT", raising=False)
    conf = gunicorn_settings(monkeypatch, DATABASE_URL="postgresql://localhost/x")
    longest_wait = Config.pool_timeout + Config.statement_timeout_ms / 1000
    assert conf["timeout"] > conf["graceful_timeout"] > longest_wait


@pytest.mark.parametrize("setting", [{"GUNICORN_TIMEOUT": "8"}, {"DRAIN_SECONDS": "12"}])
def test_gunicorn_refuses_timeouts_below_the_apps(database_url, setting):
    env = {**os.environ, "DATABASE_URL": database_url, **setting}
    checked = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "--check-config",
            "api.asgi:app",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode != 0
    assert "must exceed POOL_TIMEOUT + STATEMENT_TIMEOUT_MS" in checked.stdout + checked.stderr


def test_log_level_is_read_in_any_case_and_an_unknown_one_is_refused(monkeypatch, database_url, tmp_path):
    conf = gunicorn_settings(monkeypatch, DATABASE_URL=database_url, LOG_LEVEL="warning")
    api_log = logging.getLogger("api")
    for owner, name in [
        (api_log, "handlers"),
        (api_log, "level"),
        (logging, "_srcfile"),
        (logging, "logThreads"),
    ]:
        monkeypatch.setattr(owner, name, getattr(owner, name))  # what on_starting sets, restored afterwards
    monkeypatch.setattr(logging, "logMultiprocessing", logging.logMultiprocessing)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    conf["on_starting"](None)
    assert api_log.level == logging.WARNING
    with pytest.raises(SystemExit, match="LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        gunicorn_settings(monkeypatch, DATABASE_URL=database_url, LOG_LEVEL="verbose")


def refused(base):
    try:
        call("GET", base + "/health", timeout=2)
    except OSError:
        return True
    return False


def test_sigterm_lets_the_request_in_flight_finish(database_url, db_conn, reporter, make_incident, tmp_path):
    incident = make_incident(reporter, title="before")
    replies = []
    with gunicorn(database_url, tmp_path / "gunicorn.log", WEB_CONCURRENCY=1) as (base, process):
        with row_locked(database_url, "incidents", incident["id"]):
            in_flight = threading.Thread(
                target=lambda: replies.append(
                    call(
                        "PATCH", f"{base}/incidents/{incident['id']}", {"title": "after"}, reporter["headers"]
                    )
                )
            )
            in_flight.start()
            wait_until(lambda: lock_waiters(db_conn) == 1, 10, "the request never reached the database")
            process.send_signal(signal.SIGTERM)
            wait_until(lambda: refused(base), 10, "gunicorn kept accepting new requests")
            assert process.poll() is None
        in_flight.join(10)
        assert process.wait(timeout=20) == 0
    assert replies[0].status == 200 and replies[0].body["title"] == "after"
    assert db_conn.execute("SELECT title FROM incidents").fetchone()["title"] == "after"


def test_with_drain_seconds_ready_is_503_while_the_worker_still_serves(
    database_url, db_conn, reporter, make_incident, tmp_path
):
    incident = make_incident(reporter, title="before")
    path, replies = f"/incidents/{incident['id']}", []
    settings = {"WEB_CONCURRENCY": 1, "DRAIN_SECONDS": 2}
    with gunicorn(database_url, tmp_path / "gunicorn.log", **settings) as (base, process):
        with row_locked(database_url, "incidents", incident["id"]):
            in_flight = threading.Thread(
                target=lambda: replies.append(
                    call("PATCH", base + path, {"title": "after"}, reporter["headers"])
                )
            )
            in_flight.start()
            wait_until(lambda: lock_waiters(db_conn) == 1, 10, "the request never reached the database")
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            wait_until(lambda: call("GET", base + "/ready").status == 503, 2, "/ready did not turn 503")
            ready = call("GET", base + "/ready")
            assert ready.body["draining"] is True and int(ready.headers["retry-after"]) > 0
            assert call("GET", base + path, headers=reporter["headers"]).status == 200
            wait_until(lambda: refused(base), 10, "gunicorn kept accepting new requests")
            assert time.monotonic() - signalled >= 1.9
        in_flight.join(10)
        assert process.wait(timeout=20) == 0
    assert replies[0].status == 200 and replies[0].body["title"] == "after"


def test_drain_seconds_is_read_and_a_bad_value_refused():
    base = {"DATABASE_URL": "postgresql://localhost/x"}
    assert Config.from_env(base).drain_seconds == 0
    assert Config.from_env({**base, "DRAIN_SECONDS": "7.5"}).drain_seconds == 7.5
    for bad in ("-1", "601", "soon"):
        with pytest.raises(ConfigError, match="DRAIN_SECONDS must be 0 to 600 seconds"):
            Config.from_env({**base, "DRAIN_SECONDS": bad})
