"""GET /metrics: the Prometheus text format, only for METRICS_TOKEN, with requests counted by
route template, method and status, latency histograms, the pool's and the database's figures,
the change feed's position and the webhooks' figures (delivery attempts counted in the
database, past the log's pruning); under gunicorn, added up over the workers."""

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import os
import pathlib
import signal
import threading
import urllib.parse
import urllib.request

import falcon.testing
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api import delivery
from api.config import Config, ConfigError
from api.db import connect
from tests.fix_app import client_of
from tests.fix_db import with_database
from tests.fix_server import call, gunicorn, only_connection_held, row_locked, wait_until
from tests.fix_webhooks import LOOPBACK

TOKEN = "metrics-token-for-the-tests-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
ITEM = "/incidents/{incident_id}"


@pytest.fixture(scope="module")
def metered(config):
    with client_of(dataclasses.replace(config, metrics_token=TOKEN)) as client:
        yield client


def scrape(client):
    result = client.simulate_get("/metrics", headers=BEARER)
    assert result.status_code == 200, result.text
    return samples(result.text)


def samples(text):
    """{(sample name, frozenset of its labels): value}."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped, name, **labels):
    return scraped.get((name, frozenset(labels.items())), 0.0)


def requests(scraped, route, method, status):
    return value(scraped, "incidents_http_requests_total", route=route, method=method, status=status)


def test_metrics_are_404_while_metrics_token_is_unset(client, admin):
    for headers in ({}, BEARER, admin["headers"]):
        result = client.simulate_get("/metrics", headers=headers)
        assert result.status_code == 404
        assert result.headers["content-type"] == "application/problem+json"


def test_no_token_a_wrong_one_or_a_users_token_is_401(metered, admin):
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer \xe9t\xe9"},
        admin["headers"],
    ):
        result = metered.simulate_get("/metrics", headers=headers)
        assert result.status_code == 401, headers
        assert result.headers["www-authenticate"].startswith("Bearer")
        assert result.json["status"] == 401 and "METRICS_TOKEN" in result.json["detail"]


def test_the_metrics_token_is_the_one_credential_and_needs_no_user(metered):
    result = metered.simulate_get("/metrics", headers={"Authorization": f"bearer  {TOKEN} "})
    assert result.status_code == 200
    assert result.headers["content-type"] == TEXT_FORMAT
    assert "# TYPE incidents_http_requests_total counter" in result.text
    assert "# TYPE incidents_http_request_duration_seconds histogram" in result.text


def test_requests_count_by_route_template_method_and_status(metered, reporter, make_incident):
    incident = make_incident(reporter)
    url = f"/incidents/{incident['id']}"
    before = scrape(metered)
    for _ in range(3):
        assert metered.simulate_get(url, headers=reporter["headers"]).status_code == 200
    assert metered.simulate_get("/incidents/987654321", headers=reporter["headers"]).status_code == 404
    assert metered.simulate_get("/incidents/abc", headers=reporter["headers"]).status_code == 404
    assert metered.simulate_get(url).status_code == 401
    created = metered.simulate_post("/incidents", json={"title": "counted"}, headers=reporter["headers"])
    assert created.status_code == 201
    assert metered.simulate_request("BREW", url, headers=reporter["headers"]).status_code == 400
    after = scrape(metered)

    def grown(route, method, status):
        return requests(after, route, method, status) - requests(before, route, method, status)

    assert grown(ITEM, "GET", "200") == 3
    assert grown(ITEM, "GET", "404") == 1  # the id that names nothing counts under its template
    assert grown(ITEM, "GET", "401") == 1
    assert grown("/incidents", "POST", "201") == 1
    assert grown("unmatched", "GET", "404") == 1  # /incidents/abc matched no route
    assert grown(ITEM, "OTHER", "400") == 1  # a method Falcon does not know is no label of its own
    assert grown("/metrics", "GET", "200") == 1  # the scrape before this one
    routes = {dict(labels)["route"] for name, labels in after if name == "incidents_http_requests_total"}
    assert not any("987654321" in route or "abc" in route or ":" in route for route in routes)


def test_latency_histograms_have_buckets_by_route_template_and_method(metered, reporter, make_incident):
    incident = make_incident(reporter)
    before = scrape(metered)
    for _ in range(2):
        metered.simulate_get(f"/incidents/{incident['id']}", headers=reporter["headers"])
    after = scrape(metered)
    labels = {"route": ITEM, "method": "GET"}
    count = value(after, "incidents_http_request_duration_seconds_count", **labels)
    assert count - value(before, "incidents_http_request_duration_seconds_count", **labels) == 2
    buckets = {
        dict(key)["le"]: v
        for (name, key), v in after.items()
        if name == "incidents_http_request_duration_seconds_bucket" and dict(key).items() >= labels.items()
    }
    assert {"0.001", "0.005", "0.1", "1.0", "10.0", "+Inf"} <= buckets.keys()
    assert buckets["+Inf"] == count
    assert list(buckets.values()) == sorted(buckets.values())  # cumulative
    assert 0 < value(after, "incidents_http_request_duration_seconds_sum", **labels) < count * 10


def test_pool_gauges_and_counters_are_present(metered, config):
    scraped = scrape(metered)
    assert value(scraped, "incidents_db_pool_max_connections", pool="primary") == config.pool_max_size
    connections = value(scraped, "incidents_db_pool_connections", pool="primary")
    assert 1 <= connections <= config.pool_max_size
    assert 0 <= value(scraped, "incidents_db_pool_available_connections", pool="primary") <= connections
    assert value(scraped, "incidents_db_pool_waiting_requests", pool="primary") == 0
    for name in (
        "incidents_db_pool_waits_total",
        "incidents_db_pool_wait_seconds_total",
        "incidents_db_pool_connection_errors_total",
        "incidents_db_pool_connections_lost_total",
    ):
        assert (name, frozenset({("pool", "primary")})) in scraped
    assert not any(("pool", "replica") in labels for _, labels in scraped)  # no DATABASE_REPLICA_URL
    for cause in ("unavailable", "statement_timeout", "pool_busy"):
        assert ("incidents_database_errors_total", frozenset({("cause", cause)})) in scraped


def test_feed_position_is_the_newest_events(metered, db_conn, reporter, make_incident):
    pruned = db_conn.execute("SELECT through_position FROM events_pruned").fetchone()["through_position"]
    assert value(scrape(metered), "incidents_feed_position") == pruned  # no events yet
    make_incident(reporter)
    make_incident(reporter)
    newest = db_conn.execute("SELECT max(position) AS p FROM events").fetchone()["p"]
    assert newest > pruned
    assert value(scrape(metered), "incidents_feed_position") == newest


def test_webhook_figures(metered, db_conn, queries, reporter, make_incident):
    def webhook(**state):
        row = queries.create_webhook(
            db_conn,
            url="http://192.0.2.1/",
            event_types=["incident.created"],
            description=None,
            secret="whsec_QUJD",
        )
        db_conn.execute(
            "UPDATE webhooks SET active = %s, failures = %s WHERE id = %s", [*state.values(), row["id"]]
        )

    make_incident(reporter)
    webhook(active=True, failures=0)  # at the feed's end: nothing waits for it
    scraped = scrape(metered)
    assert value(scraped, "incidents_webhook_delivery_lag_seconds") == 0
    webhook(active=True, failures=2)
    webhook(active=False, failures=8)
    db_conn.execute("UPDATE webhooks SET cursor = 0")
    db_conn.execute("UPDATE events SET occurred_at = now() - interval '90 seconds'")
    scraped = scrape(metered)
    assert [value(scraped, "incidents_webhooks", state=s) for s in ("active", "failing", "disabled")] == [
        2,
        1,
        1,
    ]
    assert 90 <= value(scraped, "incidents_webhook_delivery_lag_seconds") < 120


def delivery_attempts(client):
    return delivery_attempts_in(scrape(client))


def delivery_attempts_in(scraped):
    """(failed, delivered): incidents_webhook_deliveries_total by outcome."""
    return tuple(
        scraped[("incidents_webhook_deliveries_total", frozenset({("outcome", outcome)}))]
        for outcome in ("failed", "delivered")
    )


@contextlib.contextmanager
def delivering(config, queries, monkeypatch):
    """The delivery worker (api/delivery.py) in a thread of this process, to loopback, retrying
    after 0.3 s, until the block ends. NOTE: it polls every 50 ms instead of every second (each
    retry waited for a poll), and in a process of its own it took a second to start."""
    monkeypatch.setattr(delivery, "POLL_SECONDS", 0.05)
    config = dataclasses.replace(
        config, webhook_allowed_networks=LOOPBACK, webhook_retry_schedule=(0.3, 0.3, 0.3)
    )
    loop, stop = asyncio.new_event_loop(), asyncio.Event()
    worker = threading.Thread(target=loop.run_until_complete, args=[delivery.run(config, queries, stop)])
    worker.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        worker.join(10)
        loop.close()


def test_failed_deliveries_are_counted_and_the_count_outlives_the_log(
    metered, config, db_conn, queries, admin, reporter, make_incident, hook_receiver, monkeypatch
):
    hook_receiver.statuses = [500, 503]  # then 200: the second retry is delivered
    webhook = queries.create_webhook(
        db_conn,
        url=hook_receiver.url,
        event_types=["incident.created"],
        description=None,
        secret="whsec_QUJD",
    )
    failed, delivered = delivery_attempts(metered)
    with delivering(config, queries, monkeypatch):
        make_incident(reporter)
        wait_until(lambda: delivery_attempts(metered) == (failed + 2, delivered + 1), 10, "attempts counted")
    assert [r.status for r in hook_receiver.got()] == [500, 503, 200]
    ping = metered.simulate_post(f"/webhooks/{webhook['id']}/ping", headers=admin["headers"])
    assert ping.status_code == 200 and not ping.json["delivered"]  # a ping is no delivery: not counted
    assert queries.purge_webhook_deliveries(db_conn, batch=100, days=0) == 4
    assert delivery_attempts(metered) == (failed + 2, delivered + 1)
    assert (
        "# TYPE incidents_webhook_deliveries_total counter"
        in metered.simulate_get("/metrics", headers=BEARER).text
    )


def test_the_delivery_counts_are_left_out_of_a_scrape_the_database_is_too_slow_for(metered, database_url):
    assert ("incidents_feed_position", frozenset()) in scrape(metered)
    with connect(database_url) as conn, conn.transaction():
        conn.execute("LOCK TABLE webhook_delivery_totals IN ACCESS EXCLUSIVE MODE")
        scraped = scrape(metered)
    assert not any(name == "incidents_webhook_deliveries_total" for name, _ in scraped)
    assert ("incidents_feed_position", frozenset()) in scraped  # the gauge keeps its last value


def test_statement_timeouts_busy_pools_and_outages_are_counted(
    database_url, db_conn, config, reporter, make_incident
):
    incident = make_incident(reporter)
    url = f"/incidents/{incident['id']}"
    tight = dataclasses.replace(
        config,
        metrics_token=TOKEN,
        pool_min_size=1,
        pool_max_size=1,
        pool_timeout=0.3,
        statement_timeout_ms=800,
    )

    async def busy_pool(app):
        async with falcon.testing.ASGIConductor(app) as conductor:
            async with only_connection_held(conductor, database_url, db_conn, incident, reporter) as holder:
                waited = await conductor.simulate_get(url, headers=reporter["headers"])
            await holder
            return waited

    others = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    earlier = [row["pid"] for row in db_conn.execute(others)]
    with client_of(tight) as client:
        before = scrape(client)
        with row_locked(database_url, "incidents", incident["id"]):
            slow = client.simulate_patch(url, json={"title": "waits"}, headers=reporter["headers"])
        assert slow.status_code == 503 and slow.json["title"] == "Request took too long"
        assert falcon.async_to_sync(busy_pool, client.app).status_code == 503
        # an outage: the tight pool's one connection dies and no new one may connect
        with connections_refused(database_url):
            db_conn.execute(
                f"SELECT pg_terminate_backend(pid) FROM ({others}) o WHERE pid <> ALL(%s)", [earlier]
            )
            assert client.simulate_get(url, headers=reporter["headers"]).status_code == 503
        after = scrape(client)

    def grown(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grown("incidents_database_errors_total", cause="statement_timeout") == 1
    assert grown("incidents_database_errors_total", cause="pool_busy") == 1
    assert grown("incidents_database_errors_total", cause="unavailable") == 1
    assert grown("incidents_db_pool_waits_total", pool="primary") >= 1
    assert grown("incidents_db_pool_wait_seconds_total", pool="primary") >= 0.25


@contextlib.contextmanager
def connections_refused(database_url):
    """No new connection to the database while the block runs (the sessions open stay)."""
    name = urllib.parse.urlsplit(database_url).path[1:]
    with connect(with_database(database_url, "postgres")) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')  # a test database's name
        try:
            yield
        finally:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_a_short_or_unprintable_metrics_token_stops_start_up():
    base = {"DATABASE_URL": "postgresql:///x"}
    assert Config.from_env(base).metrics_token is None
    assert Config.from_env({**base, "METRICS_TOKEN": ""}).metrics_token is None
    assert Config.from_env({**base, "METRICS_TOKEN": TOKEN}).metrics_token == TOKEN
    for bad in ("short", "x" * 15, "with space" * 3, "caf\xe9" * 8):
        with pytest.raises(ConfigError, match="METRICS_TOKEN"):
            Config.from_env({**base, "METRICS_TOKEN": bad})


def fetch_metrics(base):
    request = urllib.request.Request(base + "/metrics", headers=BEARER)
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"] == TEXT_FORMAT
        return samples(response.read().decode())


def workers_of(master_pid):
    """The pids of the gunicorn master's children."""
    pids = set()
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:
            pids.add(int(stat.parent.name))
    return pids


def metrics_folder_of(pid):
    """The folder of the metrics files that process `pid` has mapped into its memory."""
    maps = pathlib.Path(f"/proc/{pid}/maps").read_text().splitlines()
    return next(pathlib.Path(line.split()[-1]).parent for line in maps if line.endswith(".db"))


def both_pools_counted(base):
    return (
        value(fetch_metrics(base), "incidents_db_pool_max_connections", pool="primary")
        == 2 * Config.pool_max_size
    )


def test_gunicorn_workers_count_into_one_private_folder_that_goes_at_exit(database_url, db_conn, tmp_path):
    sent = 60
    db_conn.execute("INSERT INTO webhook_delivery_totals (webhook_id, delivered, failed) VALUES (1, 5, 3)")
    with gunicorn(database_url, tmp_path / "gunicorn.log", METRICS_TOKEN=TOKEN) as (base, process):
        wait_until(lambda: both_pools_counted(base), 20, "both workers started")
        workers = workers_of(process.pid)
        assert len(workers) == 2
        folder = metrics_folder_of(min(workers))
        assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: call("GET", base + "/health").status, range(sent)))
        assert statuses == [200] * sent
        for _ in range(6):  # whichever worker answers, the sum is the same
            scraped = fetch_metrics(base)
            assert requests(scraped, "/health", "GET", "200") == sent
            assert delivery_attempts_in(scraped) == (3, 5)  # read from the database, not added up
            assert (
                value(scraped, "incidents_db_pool_max_connections", pool="primary")
                == 2 * Config.pool_max_size
            )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    answered = {
        line.split("]")[0].rsplit("[", 1)[1]
        for line in (tmp_path / "gunicorn.log").read_text().splitlines()
        if "GET /health 200" in line
    }
    assert len(answered) == 2, "both workers answered /health"
    assert not folder.exists()


def test_a_dead_workers_counts_stay_and_its_pool_gauges_go(database_url, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"left over from an earlier run")
    env = {"METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": folder}
    with gunicorn(database_url, tmp_path / "gunicorn.log", **env) as (base, process):
        assert not (folder / "counter_1.db").exists()  # emptied at start
        for _ in range(10):
            assert call("GET", base + "/health").status == 200
        victim, survivor = sorted(workers_of(process.pid))
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: not (folder / f"gauge_livesum_{victim}.db").exists(), 10, "child_exit marked it dead"
        )
        wait_until(lambda: workers_of(process.pid) - {victim, survivor}, 20, "gunicorn replaced the worker")
        (replacement,) = workers_of(process.pid) - {victim, survivor}
        pool_max = []

        def both_pools_counted():
            scraped = fetch_metrics(base)
            assert requests(scraped, "/health", "GET", "200") == 10  # the dead worker's count stays
            pool_max.append(value(scraped, "incidents_db_pool_max_connections", pool="primary"))
            return pool_max[-1] == 2 * Config.pool_max_size

        wait_until(both_pools_counted, 20, f"the new worker {replacement} counts its pool")
        assert max(pool_max) == 2 * Config.pool_max_size  # never the dead worker's too
