"""The app through a real PgBouncer in transaction mode (DATABASE_POOLER=transaction): the API
works, its session settings hold without startup options, no prepared statement crosses from
one server session to another, and an outage behind the pooler is a quick 503 that heals."""

import asyncio
import os
import subprocess
import sys
import time

import falcon
import falcon.testing
import psycopg
import pytest
from psycopg.rows import dict_row

from api.cli import migrate, pgcluster
from api.config import Config
from api.db import SessionDefaultsMissing, connect, save_session_defaults
from tests.fix_app import PASSWORD, bearer_of_new_user, client_of
from tests.fix_pgbouncer import pgbouncer, require_pgbouncer
from tests.fix_server import ROOT, call, free_port, gunicorn, row_locked, wait_until
from tests.test_faults import CRASH_SAFE

STATEMENT_TIMEOUT_MS = 500
SERVER_POOL = 2  # PgBouncer's server connections per database, fewer than the app's pool


@pytest.fixture(autouse=True, scope="module")
def _pgbouncer_installed():
    require_pgbouncer()


def pooled(url, **settings):
    defaults = {
        "database_pooler": "transaction",
        "statement_timeout_ms": STATEMENT_TIMEOUT_MS,
        "pool_min_size": 1,
        "pool_max_size": 8,
    }
    return Config(database_url=url, **{**defaults, **settings})


@pytest.fixture(scope="module")
def bouncer(server_url):
    with pgbouncer(server_url, default_pool_size=SERVER_POOL) as pooled_url:
        yield pooled_url


@pytest.fixture(scope="module")
def pooled_url(bouncer, database_url, db_conn):
    """The test database through PgBouncer, with the app's settings as the role's defaults there
    (as `python -m api migrate` saves them) and a server time zone that is not UTC."""
    name = db_conn.execute("SELECT current_database() AS name").fetchone()["name"]
    save_session_defaults(db_conn, pooled(database_url))
    db_conn.execute(f"ALTER DATABASE \"{name}\" SET timezone = 'Asia/Kolkata'")  # a test database's name
    try:
        yield bouncer(name)
    finally:
        db_conn.execute(f'ALTER ROLE CURRENT_USER IN DATABASE "{name}" RESET ALL')
        db_conn.execute(f'ALTER DATABASE "{name}" RESET timezone')


@pytest.fixture(scope="module")
def pooled_client(pooled_url):
    with client_of(pooled(pooled_url)) as client:
        yield client


def test_the_api_works_through_the_pooler(pooled_client, make_user, db_conn):
    client, user = pooled_client, make_user("responder")
    token = login(client, user)
    headers = {"Authorization": f"Bearer {token}"}
    created = client.simulate_post(
        "/incidents", json={"title": "Disk full on db-7"}, headers={**headers, "Idempotency-Key": "k1"}
    )
    assert created.status_code == 201 and created.json["created_at"].endswith("+00:00")
    replayed = client.simulate_post(
        "/incidents", json={"title": "Disk full on db-7"}, headers={**headers, "Idempotency-Key": "k1"}
    )
    assert replayed.status_code == 201 and replayed.json == created.json
    path = created.headers["location"]
    assert client.simulate_get(path, headers=headers).json["title"] == "Disk full on db-7"
    patched = client.simulate_patch(path, json={"severity": "high"}, headers=headers)
    assert patched.status_code == 200 and patched.json["severity"] == "high"
    comment = client.simulate_post(path + "/comments", json={"content": "disk grew"}, headers=headers)
    assert comment.status_code == 201
    assert len(client.simulate_get(path + "/comments", headers=headers).json["items"]) == 1
    assert [i["id"] for i in client.simulate_get("/incidents", headers=headers).json["items"]] == [
        created.json["id"]
    ]
    found = client.simulate_get("/incidents/search", params={"query": "disk"}, headers=headers)
    assert [i["id"] for i in found.json["items"]] == [created.json["id"]]
    assert client.simulate_get("/incidents/stats", headers=headers).status_code == 200
    events = client.simulate_get("/events", headers=headers).json["items"]
    assert len(events) == 3  # created, updated, commented
    assert db_conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"] == 1


def login(client, user):
    result = client.simulate_post("/auth/tokens", json={"username": user["username"], "password": PASSWORD})
    assert result.status_code == 201, result.json
    return result.json["token"]


# The existing tests that run again with the app through PgBouncer (--through-pgbouncer, see
# tests/fix_pgbouncer.py): deletes, lifecycle transitions and follows, users, categories,
# webhooks, cursors and paging, If-Match and 412, 304, login throttling.
# PERF: chosen to add well under a minute: 21 s in a whole run, up to 42 s on a busy machine.
POOLED_SLICE = [
    "tests/test_lifecycle.py",
    "tests/test_categories.py",
    "tests/test_users.py",
    "tests/test_incident_lists.py",
    "tests/test_webhooks.py",
    "tests/test_security.py::test_ten_failures_in_15_minutes_throttle_the_username_even_with_the_right_password",
    "tests/test_security.py::test_retry_after_counts_down_to_when_the_throttle_lifts",
]


def test_a_slice_of_the_suite_passes_through_the_pooler(request, server_url):
    if request.config.getoption("through_pgbouncer"):
        pytest.skip("this session runs the app through PgBouncer already")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--through-pgbouncer", "--tb=short", "-rfEs", *POOLED_SLICE],
        cwd=ROOT,
        # the session's server (no second cluster); PERF: without the plugins of other packages
        # (schemathesis, hypothesis, anyio), which the slice does not use: 3 s of CPU less
        env={**os.environ, "TEST_DATABASE_URL": server_url, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(
            f"the slice failed with the app through PgBouncer:\n{result.stdout}{result.stderr}", pytrace=False
        )


def test_session_settings_hold_through_the_pooler(pooled_url):
    with connect_pooled(pooled_url) as conn:
        settings = conn.execute("SELECT current_setting('TimeZone') AS tz, current_setting('jit') AS jit")
        assert settings.fetchone() == {"tz": "UTC", "jit": "off"}
        assert conn.execute("SELECT now()::text AS now").fetchone()["now"].endswith("+00")


def connect_pooled(url):
    return psycopg.connect(url, autocommit=True, row_factory=dict_row, prepare_threshold=None)


def test_a_slow_statement_is_cut_through_the_pooler(
    pooled_client, database_url, reporter, make_incident, db_conn
):
    incident = make_incident(reporter, title="before")
    with row_locked(database_url, "incidents", incident["id"]):
        started = time.monotonic()
        result = pooled_client.simulate_patch(
            f"/incidents/{incident['id']}", json={"title": "after"}, headers=reporter["headers"]
        )
        elapsed = time.monotonic() - started
    assert result.status_code == 503 and result.json["title"] == "Request took too long"
    assert int(result.headers["retry-after"]) > 0
    assert STATEMENT_TIMEOUT_MS / 1000 <= elapsed < 2
    assert db_conn.execute("SELECT title FROM incidents").fetchone()["title"] == "before"


def test_the_app_refuses_to_start_without_the_role_defaults(bouncer, database_url, pooled_url):
    with (
        pytest.raises(SessionDefaultsMissing, match="python -m api migrate"),
        client_of(pooled(pooled_url, statement_timeout_ms=1234)),
    ):
        pass


def test_gunicorn_serves_through_the_pooler_and_will_not_boot_without_the_defaults(
    pooled_url, reporter, tmp_path
):
    env = {"DATABASE_POOLER": "transaction", "STATEMENT_TIMEOUT_MS": STATEMENT_TIMEOUT_MS}
    with gunicorn(pooled_url, tmp_path / "gunicorn.log", **env) as (base, _):
        assert call("GET", base + "/incidents", headers=reporter["headers"]).status == 200
    refused = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "-c", "gunicorn.conf.py", "api.asgi:app"],
        cwd=ROOT,
        env={
            **os.environ,
            **env,
            "DATABASE_URL": pooled_url,
            "STATEMENT_TIMEOUT_MS": "1234",
            "PORT": str(free_port()),
            # NOTE: one worker: with two, the second's boot failure can reach gunicorn while it
            # halts for the first, and escapes it as an exit status of 1 instead of 3.
            "WEB_CONCURRENCY": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 3  # gunicorn's "Worker failed to boot"
    assert "Run `python -m api migrate` with the same STATEMENT_TIMEOUT_MS" in refused.stderr


def test_the_command_line_through_the_pooler_says_to_use_postgresql_itself(pooled_url):
    result = subprocess.run(
        [sys.executable, "-m", "api", "migrate"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": pooled_url},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "needs DATABASE_URL to name PostgreSQL itself" in result.stderr


@pytest.fixture(scope="module")
def lenient_bouncer(server_url, pooled_url):
    """A PgBouncer that drops startup options instead of refusing them, so that an app that was
    not told about it connects and prepares its statements as if directly on PostgreSQL."""
    with pgbouncer(server_url, default_pool_size=SERVER_POOL, ignore_startup_parameters="options") as bouncer:
        yield bouncer(pooled_url.rsplit("/", 1)[1])


@pytest.mark.parametrize(("pooler", "all_served"), [("transaction", True), ("", False)])
def test_prepared_statements_never_cross_server_sessions(
    lenient_bouncer, reporter, make_incident, pooler, all_served
):
    """Many identical reads at once, from 8 client connections over 2 server sessions: each
    query is prepared on its first run on a connection unless DATABASE_POOLER says not to."""
    incident = make_incident(reporter)
    config = pooled(lenient_bouncer, pool_min_size=8, database_pooler=pooler)

    async def read_many(app):
        async with falcon.testing.ASGIConductor(app) as conductor:
            get = conductor.simulate_get
            return await asyncio.gather(
                *(get(f"/incidents/{incident['id']}", headers=reporter["headers"]) for _ in range(400))
            )

    with client_of(config) as client:
        statuses = {r.status_code for r in falcon.async_to_sync(read_many, client.app)}
    assert (statuses == {200}) == all_served, statuses


@pytest.fixture
def outage_cluster():
    """A cluster of its own (stopping the shared one would break other tests) behind PgBouncer,
    migrated, with the app's settings saved."""
    with pgcluster.throwaway_cluster(CRASH_SAFE) as cluster:
        url = cluster.url()
        migrate.apply(url)
        with connect(url) as conn:
            save_session_defaults(conn, pooled(url))
            headers = bearer_of_new_user(conn, "admin")
        with pgbouncer(cluster.url("postgres")) as bouncer:
            yield cluster, bouncer, headers


def test_postgres_down_behind_the_pooler_is_a_quick_503_and_heals(outage_cluster):
    cluster, bouncer, headers = outage_cluster
    with client_of(pooled(bouncer(pgcluster.DATABASE_NAME))) as client:
        assert client.simulate_get("/incidents", headers=headers).status_code == 200
        cluster.stop(mode="immediate")
        assert_quick_503s(client, headers)
        cluster.start(*CRASH_SAFE)
        assert_heals(client, headers)


def test_pgbouncer_restarted_is_a_quick_503_and_heals(outage_cluster):
    _, bouncer, headers = outage_cluster
    with client_of(pooled(bouncer(pgcluster.DATABASE_NAME))) as client:
        assert client.simulate_get("/incidents", headers=headers).status_code == 200
        bouncer.stop()
        assert_quick_503s(client, headers)
        bouncer.start()
        assert_heals(client, headers)


def assert_quick_503s(client, headers):
    replies = [timed(client.simulate_get, "/incidents", headers) for _ in range(30)]
    assert all(r.status_code == 503 and int(r.headers["retry-after"]) > 0 for r, _ in replies)
    seconds = sorted(s for _, s in replies)
    assert seconds[-1] < 3 and seconds[len(seconds) // 2] < 0.1, seconds


def assert_heals(client, headers):
    wait_until(
        lambda: client.simulate_get("/incidents", headers=headers).status_code == 200,
        10,
        "the app did not reconnect by itself",
    )


def timed(get, path, headers):
    started = time.monotonic()
    return get(path, headers=headers), time.monotonic() - started


def test_config_reads_database_pooler():
    env = {"DATABASE_URL": "postgresql://x/y"}
    assert Config.from_env({**env, "DATABASE_POOLER": "transaction"}).database_pooler == "transaction"
    assert Config.from_env(env).database_pooler == ""
    with pytest.raises(ValueError, match="DATABASE_POOLER"):
        Config.from_env({**env, "DATABASE_POOLER": "statement"})
