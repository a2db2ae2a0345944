"""GET /health says the process answers, without touching the database; GET /ready says the
database answers within 0.5 s and the worker is not draining."""

import signal
import time

import falcon.testing

from api.app import create_app
from api.config import Config
from api.db import Database
from tests.fix_app import client_of
from tests.fix_server import only_connection_held

UNREACHABLE = Config(database_url="postgresql://postgres@/x?host=/nonexistent", pool_timeout=1)


def test_health_answers_without_a_token_or_a_database():
    client = falcon.testing.TestClient(create_app(Database(UNREACHABLE)))  # its pool never opened
    result = client.simulate_get("/health")
    assert (result.status_code, result.json) == (200, {"status": "ok"})


def test_ready_reports_the_database_without_a_token(client):
    result = client.simulate_get("/ready")
    assert (result.status_code, result.json) == (200, {"status": "ok", "database": "ok"})


def test_ready_is_503_when_the_database_does_not_answer_within_half_a_second(
    database_url, db_conn, reporter, make_incident
):
    """The only connection is out with a request waiting on a row lock: /ready gives up at 0.5 s."""
    incident = make_incident(reporter)
    config = Config(database_url=database_url, pool_min_size=1, pool_max_size=1, pool_timeout=3)

    async def run(app):
        async with falcon.testing.ASGIConductor(app) as conductor:
            async with only_connection_held(conductor, database_url, db_conn, incident, reporter) as holder:
                started = time.monotonic()
                ready = await conductor.simulate_get("/ready")
                waited = time.monotonic() - started
            await holder
            return ready, waited, await conductor.simulate_get("/ready")

    with client_of(config) as client:
        ready, waited, after = falcon.async_to_sync(run, client.app)
    assert ready.status_code == 503 and ready.json["database"] == "unreachable"
    assert int(ready.headers["retry-after"]) > 0
    assert 0.5 <= waited < 1.5
    assert after.status_code == 200


def test_ready_is_503_from_sigterm_on_while_health_still_answers(database_url):
    """The served app (with its lifespan) notes SIGTERM before the server's own handler runs."""
    server_handler_ran = []
    original = signal.signal(signal.SIGTERM, lambda signum, frame: server_handler_ran.append(signum))

    async def run(app):
        async with falcon.testing.ASGIConductor(app) as conductor:
            before = await conductor.simulate_get("/ready")
            signal.raise_signal(signal.SIGTERM)
            return before, await conductor.simulate_get("/ready"), await conductor.simulate_get("/health")

    try:
        app = create_app(Database(Config(database_url=database_url)), lifespan=True)
        before, draining, health = falcon.async_to_sync(run, app)
    finally:
        signal.signal(signal.SIGTERM, original)
    assert before.status_code == 200
    assert draining.status_code == 503 and draining.json["draining"] is True
    assert int(draining.headers["retry-after"]) > 0
    assert health.status_code == 200
    assert server_handler_ran == [signal.SIGTERM]
