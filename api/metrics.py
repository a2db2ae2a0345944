"""Prometheus metrics: what each worker counts, and the text that GET /metrics answers.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py sets it before the workers fork)
puts prometheus_client in multiprocess mode: each worker writes its figures to files of its
own in that folder, and a scrape, whichever worker answers it, adds up those of all. Without
it (the tests' in-process app), the figures live in this process alone.

A new figure is one line below (Counter, Gauge with its multiprocess_mode, or Histogram, with
`registry=REGISTRY`) and one `.inc()`, `.set()` or `.observe()` where it happens. A counter that
the database keeps (webhook_deliveries) is instead made afresh for each scrape, from what the
scrape read."""

import asyncio
import os
import re
import time

import falcon
import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import CounterMetricFamily

# NOTE: prometheus_client chooses its mode once, when it is imported; so does this module.
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ
# The classic text format: every Prometheus reads it, and the names here need nothing newer.
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_PLAIN_0_0_4
prometheus_client.disable_created_metrics()  # no *_created series: half the lines, no use here
REGISTRY = CollectorRegistry()

REQUESTS = Counter(
    "incidents_http_requests_total",
    "Requests answered, by route template, method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
# NOTE: by route and method, not status: a route's latency in one series per bucket, and a
# third of the series (the statuses are in the counter above).
LATENCY = Histogram(
    "incidents_http_request_duration_seconds",
    "Time from the request's arrival at the app to its response, by route template and method",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
DATABASE_ERRORS = Counter(
    "incidents_database_errors_total",
    "Requests answered 503 because of the database: unavailable (an outage), "
    "statement_timeout (STATEMENT_TIMEOUT_MS), pool_busy (every connection busy for POOL_TIMEOUT)",
    ["cause"],
    registry=REGISTRY,
)
DATABASE_UNAVAILABLE, STATEMENT_TIMEOUTS, POOL_BUSY = (
    DATABASE_ERRORS.labels(cause) for cause in ("unavailable", "statement_timeout", "pool_busy")
)
FEED_POSITION = Gauge(
    "incidents_feed_position",
    "The change feed's newest position (its newest event's, or the pruned-through one when empty)",
    registry=REGISTRY,
    multiprocess_mode="livemostrecent",
)
WEBHOOKS = Gauge(
    "incidents_webhooks",
    "Webhooks by state: active, failing (active, the last attempt at its next event failed), disabled",
    ["state"],
    registry=REGISTRY,
    multiprocess_mode="livemostrecent",
)
WEBHOOK_DELIVERY_LAG = Gauge(
    "incidents_webhook_delivery_lag_seconds",
    "Age of the oldest event an active webhook has yet to get (0 when none is waiting)",
    registry=REGISTRY,
    multiprocess_mode="livemostrecent",
)
REPLICA_READS = Counter(
    "incidents_replica_reads_total",
    "Requests that may read from the replica (DATABASE_REPLICA_URL), by the server that served "
    "their reads: replica, or primary (the replica down, too far behind, or without the caller's "
    "own last write yet)",
    ["served_by"],
    registry=REGISTRY,
)
REPLICA_LAG = Gauge(
    "incidents_replica_lag_seconds",
    "At most how far the replica is behind the primary, as the last probe found",
    registry=REGISTRY,
    multiprocess_mode="livemostrecent",
)
# The pools' own figures (psycopg_pool's get_stats()), added up over the workers alive, by
# pool: primary, and replica with DATABASE_REPLICA_URL.
POOL_GAUGES = {
    name: Gauge(metric, text, ["pool"], registry=REGISTRY, multiprocess_mode="livesum")
    for name, metric, text in (
        ("pool_max", "incidents_db_pool_max_connections", "Connections the pools may open (POOL_MAX_SIZE)"),
        ("pool_size", "incidents_db_pool_connections", "Connections open, in use or idle"),
        ("pool_available", "incidents_db_pool_available_connections", "Connections idle in the pools"),
        ("requests_waiting", "incidents_db_pool_waiting_requests", "Requests waiting for a connection"),
    )
}
POOL_COUNTERS = {
    name: (Counter(metric, text, ["pool"], registry=REGISTRY), scale)
    for name, metric, text, scale in (
        ("requests_queued", "incidents_db_pool_waits_total", "Connection requests that had to wait", 1),
        ("requests_wait_ms", "incidents_db_pool_wait_seconds_total", "Time waited for a connection", 0.001),
        ("connections_errors", "incidents_db_pool_connection_errors_total", "Failed attempts to connect", 1),
        ("connections_lost", "incidents_db_pool_connections_lost_total", "Connections found broken", 1),
    )
}
# How often each worker writes its pool's figures for the others' scrapes (the worker that
# answers a scrape writes its own first).
POOL_REFRESH_SECONDS = 5.0

UNMATCHED = "unmatched"  # the route label of every request that matched no route
KNOWN_METHODS = frozenset(falcon.COMBINED_METHODS)
CONVERTER = re.compile(r"\{(\w+):\w+(?:\([^)]*\))?\}")


class RequestMetrics:
    """Counts each request by route template, method and status, and observes its duration.
    APPSEC: the labels come from the route table, never the path (each distinct path would be a
    new series held in memory); a method Falcon does not know is `OTHER`.
    PERF: one counter increment and one histogram observation per request, on label children
    bound once per (template, method, status)."""

    def __init__(self):
        self._bound = {}

    async def process_response(self, req, resp, resource, req_succeeded):
        # NOTE: RequestLog (first in the middleware) set `started` in its process_request.
        elapsed = time.perf_counter() - req.context.started
        key = (req.uri_template, req.method, resp.status)
        bound = self._bound.get(key) or self._bind(key)
        bound[0].inc()
        bound[1].observe(elapsed)

    def _bind(self, key):
        template, method, status = key
        known = method in KNOWN_METHODS
        route = UNMATCHED if template is None else CONVERTER.sub(r"{\1}", template)
        labels = (route, method if known else "OTHER")
        bound = (REQUESTS.labels(*labels, str(falcon.http_status_to_code(status))), LATENCY.labels(*labels))
        if known:
            self._bound[key] = bound
        return bound


class PoolFigures:
    """Writes the figures of `db`'s pools, labelled with the pool's name: the gauges as they are,
    the counters by what they grew since the last refresh (psycopg_pool's own counts start again
    with each new pool)."""

    def __init__(self, db):
        self._db = db
        self._seen = {}  # (pool, figure) -> its value at the last refresh

    def refresh(self):
        for pool, stats in self._db.pool_stats().items():
            self._write(pool, stats)

    def _write(self, pool, stats):
        for name, gauge in POOL_GAUGES.items():
            gauge.labels(pool).set(stats.get(name, 0))
        for name, (counter, scale) in POOL_COUNTERS.items():
            value, seen = stats.get(name, 0), self._seen.get((pool, name), 0)
            grown = value - seen if value >= seen else value
            counter.labels(pool).inc(grown * scale)  # 0 too: the series shows from the start
            self._seen[pool, name] = value

    async def refresh_every(self, seconds=POOL_REFRESH_SECONDS):
        while True:
            self.refresh()
            await asyncio.sleep(seconds)


def webhook_deliveries(delivered, failed):
    """incidents_webhook_deliveries_total: the delivery workers' attempts, as the database
    counts them. NOTE: not a Counter of this process: the attempts are made by other processes,
    and a running total read from the database is the same whichever worker reads it, where the
    multiprocess mode would add up the workers' copies."""
    family = CounterMetricFamily(
        "incidents_webhook_deliveries",
        "Attempts of the delivery workers to deliver an event to a webhook (redeliveries included, "
        "pings not), by outcome: delivered (a 2xx in time) or failed",
        labels=["outcome"],
    )
    family.add_metric(["delivered"], delivered)
    family.add_metric(["failed"], failed)
    return family


class Scrape:
    """What a scrape answers: the figures of `registry`, then the families made for it."""

    def __init__(self, registry, families):
        self._registry = registry
        self._families = families

    def collect(self):
        yield from self._registry.collect()
        yield from self._families


def exposition(read_now=()):
    """Every figure in the Prometheus text format: in multiprocess mode, those of all workers;
    then the metric families `read_now` (made from the database for this scrape)."""
    registry = REGISTRY
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return prometheus_client.generate_latest(Scrape(registry, read_now))
