"""The Falcon application: routes, media handlers, middleware and error handling."""

import asyncio
import logging
import os
import re
import signal
import threading
import time

import falcon
import falcon.asgi
import falcon.media
import orjson
import psycopg

from api import errors, metrics, openapi, retention
from api.auth import AuthMiddleware
from api.errors import escape_controls
from api.lists import IncidentLists
from api.resources import (
    alerts,
    analytics,
    categories,
    comments,
    docs,
    events,
    follows,
    health,
    history,
    incidents,
    notifications,
    tokens,
    users,
    webhooks,
)
from api.resources import metrics as metrics_resource
from api.schemas import MAX_ID
from api.sql import load_queries
from api.validation import MERGE_PATCH

MAX_BODY_BYTES = 1024 * 1024
# NOTE: the schemas nest 3 deep; jsonschema's uniqueItems recursed out of stack at ~300.
MAX_NESTING = 32
log = logging.getLogger("api")


class IdConverter(falcon.routing.BaseConverter):
    """Path ids: plain ASCII digits, 1 to 2**63 - 1. (Falcon's `int` also takes "+1", "0_1"
    and non-ASCII digits, which would make one incident reachable under many URLs.)"""

    def convert(self, value):
        if value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_ID and value[0] != "0":
            return int(value)
        return None


class BoundedJSONHandler(falcon.media.JSONHandler):
    """JSON that refuses bodies over MAX_BODY_BYTES (413) and nesting deeper than MAX_NESTING (400)."""

    async def deserialize_async(self, stream, content_type, content_length):
        if content_length is not None and content_length > MAX_BODY_BYTES:
            raise falcon.HTTPContentTooLarge(description="The body is over 1 MiB.")
        data = await stream.read(MAX_BODY_BYTES + 1)
        if len(data) > MAX_BODY_BYTES:
            raise falcon.HTTPContentTooLarge(description="The body is over 1 MiB.")
        try:
            body = self._deserialize(data)
        except RecursionError:
            raise falcon.MediaMalformedError("JSON") from None
        if nesting(body) > MAX_NESTING:
            raise falcon.HTTPBadRequest(description=f"The JSON nests deeper than {MAX_NESTING} levels.")
        return body


def nesting(value):
    """How deep arrays and objects nest in `value` (counted without recursion)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            todo.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


class ConnectionPerRequest:
    """Every query of a request runs on one pooled connection, checked out only if the request
    touches the database (a 404 or a /docs asset never does) and returned when it ends. With a
    replica, the primary notes how far the WAL had got once a caller's write committed, before
    the response goes out (read-your-writes: api/replica.py)."""

    def __init__(self, db, queries):
        self._db = db
        self._queries = queries

    async def process_request(self, req, resp):
        req.context.db_scope = self._db.begin_request()

    async def process_response(self, req, resp, resource, req_succeeded):
        scope, user = req.context.db_scope, req.context.get("user")
        if scope.wrote and user is not None and self._db.replica is not None:
            await self._mark_write(user["id"])
        await self._db.end_request(scope)

    async def _mark_write(self, user_id):
        try:
            async with self._db.read() as conn:
                await self._queries.mark_write(conn, user_id=user_id)
        except psycopg.Error as ex:  # the write is committed: its answer stands
            log.warning("could not note a write for read-your-writes: %s", type(ex).__name__)


class WakeDelivery:
    """After a write succeeds, the delivery workers are woken (NOTIFY webhook_delivery): by a
    background task of the worker process, at most once per WAKE_INTERVAL. PERF: a NOTIFY inside
    the write's own transaction would serialise every commit behind a database-wide lock that
    PostgreSQL holds until the commit is flushed, which cost writers half their throughput with
    the feed's counter row; off the request's path it costs a statement every WAKE_INTERVAL."""

    WAKE_INTERVAL = 0.05

    def __init__(self, db, queries):
        self._db = db
        self._queries = queries
        self._pending = asyncio.Event()

    async def process_response(self, req, resp, resource, req_succeeded):
        if req_succeeded and req.method in WRITES:
            self._pending.set()

    async def run(self):
        while True:
            await self._pending.wait()
            self._pending.clear()
            try:
                async with self._db.background() as conn:
                    await self._queries.wake_delivery(conn)
            except psycopg.Error as ex:
                log.warning("could not wake the delivery workers: %s", type(ex).__name__)
            await asyncio.sleep(self.WAKE_INTERVAL)


WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class Lifespan:
    """The served app opens its pool at ASGI startup, in the worker after the fork, starts the
    retention job, the delivery wake-ups (and, with metrics on, the refresh of its pool's
    figures), and stops them at shutdown; from SIGTERM on, the worker is `draining` (GET /ready
    answers 503) and stops accepting DRAIN_SECONDS later. (Tests open the pool themselves:
    Falcon's test client runs startup and shutdown around every simulated request.)"""

    def __init__(self, db, queries, retention_interval, wake_delivery, pool_figures=None):
        self._db = db
        self._queries = queries
        self._retention_interval = retention_interval
        self._wake_delivery = wake_delivery
        self._pool_figures = pool_figures
        self._tasks = []
        self.draining = False

    async def process_startup(self, scope, event):
        await self._db.open()
        # NOTE: Python installs signal handlers only from the main thread, where gunicorn's
        # workers run the app; an ASGI client that runs the app's startup in a thread of its
        # own (schemathesis, in tests/test_fuzz.py) gets no SIGTERM to drain on anyway.
        if threading.current_thread() is threading.main_thread():
            self._watch_sigterm()
        self._tasks += [
            asyncio.create_task(retention.run_every(self._retention_interval, self._db, self._queries)),
            asyncio.create_task(self._wake_delivery.run()),
        ]
        if self._pool_figures is not None:
            self._tasks.append(asyncio.create_task(self._pool_figures.refresh_every()))
        if self._db.replica is not None:
            self._tasks.append(asyncio.create_task(self._db.replica.watch(self._db, self._queries)))

    async def process_shutdown(self, scope, event):
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        await self._db.close()

    def _watch_sigterm(self):
        # NOTE: uvicorn's own SIGTERM handler (stop accepting, finish the requests in flight)
        # runs after this one, DRAIN_SECONDS later: meanwhile the worker still serves and
        # GET /ready answers 503, so a load balancer stops sending it requests before it stops
        # accepting them. A second SIGTERM cuts the wait short.
        previous = signal.getsignal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        drain_seconds = self._db.config.drain_seconds

        def stop_serving(signum, frame):
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.raise_signal(signal.SIGTERM)

        def on_sigterm(signum, frame):
            drained_already, self.draining = self.draining, True
            if drained_already or not drain_seconds:
                stop_serving(signum, frame)
            else:
                loop.call_soon_threadsafe(loop.call_later, drain_seconds, stop_serving, signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)


class RequestLog:
    """One log line per request: its id, method, path, status and duration. The id is the
    client's `X-Request-ID` when that is sane, else a new one; every response carries it."""

    async def process_request(self, req, resp):
        req.context.started = time.perf_counter()
        sent = req.get_header(REQUEST_ID)
        # PERF: 16 random bytes in hex, as uuid4().hex but without its UUID object (5 µs to 0.8)
        req.context.request_id = sent if sent and SANE_REQUEST_ID.fullmatch(sent) else os.urandom(16).hex()

    async def process_response(self, req, resp, resource, req_succeeded):
        resp.set_header(REQUEST_ID, req.context.request_id)
        if not log.isEnabledFor(logging.INFO):
            return
        elapsed_ms = (time.perf_counter() - req.context.started) * 1000
        log.info(
            "%s %s %s %s %.1fms",
            req.context.request_id,
            req.method,
            escape_controls(req.path),
            resp.status[:3],
            elapsed_ms,
        )


REQUEST_ID = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class SecurityHeaders:
    """`nosniff` on every response; nothing under /auth/ (tokens) is stored by a cache."""

    async def process_response(self, req, resp, resource, req_succeeded):
        resp.set_header("X-Content-Type-Options", "nosniff")
        if req.path.startswith("/auth/"):
            resp.set_header("Cache-Control", "no-store")


def create_app(db, lifespan=False):
    """The ASGI app on `db`; with `lifespan`, it opens and closes the pool itself (Lifespan)."""
    queries = load_queries()
    wake_delivery = WakeDelivery(db, queries)
    # PERF: without METRICS_TOKEN nobody may read the metrics, so nothing counts them.
    pool_figures = metrics.PoolFigures(db) if db.config.metrics_token else None
    server = Lifespan(db, queries, db.config.retention_interval_seconds, wake_delivery, pool_figures)
    counting = [metrics.RequestMetrics()] if pool_figures else []
    middleware = [
        RequestLog(),
        *counting,
        SecurityHeaders(),
        wake_delivery,
        ConnectionPerRequest(db, queries),
        AuthMiddleware(db, queries),
    ]
    app = falcon.asgi.App(middleware=[server, *middleware] if lifespan else middleware)
    app.router_options.converters["id"] = IdConverter  # "/users/{user_id:id}"
    request_json = BoundedJSONHandler()
    app.req_options.media_handlers = falcon.media.Handlers(
        {falcon.MEDIA_JSON: request_json, MERGE_PATCH: request_json}
    )
    # PERF: orjson writes a 50-item page in 28 µs against the json module's 366 µs, and writes
    # datetimes as RFC 3339 itself. (Requests keep the json module: it lets the validator name
    # a lone surrogate instead of failing the whole body.)
    app.resp_options.media_handlers = falcon.media.Handlers(
        {falcon.MEDIA_JSON: falcon.media.JSONHandler(dumps=orjson.dumps)}
    )
    errors.register(app)
    add_routes(app, db, queries, server, pool_figures)
    return app


def add_routes(app, db, queries, server, pool_figures):
    lists = IncidentLists(queries)
    openapi_document = docs.OpenAPIDocument()
    routes = {
        "/health": health.Health(),
        "/ready": health.Ready(db, queries, server),
        "/openapi.json": openapi_document,
        "/docs": docs.DocsPage(),
        "/metrics": metrics_resource.Metrics(db, queries, pool_figures),
        "/auth/tokens": tokens.Collection(db, queries),
        "/auth/tokens/current": tokens.Current(db, queries),
        "/auth/tokens/{token_id:id}": tokens.Item(db, queries),
        "/users": users.Collection(db, queries),
        "/users/{user_id:id}": users.Item(db, queries),
        "/users/{user_id:id}/incidents": users.Incidents(db, queries, lists),
        "/users/{user_id:id}/follow": follows.Follow(db, queries),
        "/users/{user_id:id}/followers": follows.Followers(db, queries),
        "/users/{user_id:id}/following": follows.Following(db, queries),
        "/incidents": incidents.Collection(db, queries, lists),
        "/incidents/search": analytics.Search(db, queries),
        "/incidents/stats": analytics.Stats(db, queries),
        "/incidents/{incident_id:id}": incidents.Item(db, queries),
        "/incidents/{incident_id:id}/comments": comments.Collection(db, queries),
        "/incidents/{incident_id:id}/comments/{comment_id:id}": comments.Item(db, queries),
        "/incidents/{incident_id:id}/resolve": incidents.Resolve(db, queries),
        "/incidents/{incident_id:id}/history": history.History(db, queries),
        "/notifications": notifications.Collection(db, queries),
        "/notifications/{notification_id:id}/read": notifications.Read(db, queries),
        "/categories": categories.Collection(db, queries),
        "/categories/{category_id:id}": categories.Item(db, queries),
        "/categories/{category_id:id}/incidents": categories.Incidents(db, queries, lists),
        "/events": events.Feed(db, queries),
        "/webhooks": webhooks.Collection(db, queries),
        "/webhooks/{webhook_id:id}": webhooks.Item(db, queries),
        "/webhooks/{webhook_id:id}/ping": webhooks.Ping(db, queries),
        "/webhooks/{webhook_id:id}/rotate-secret": webhooks.RotateSecret(db, queries),
        "/webhooks/{webhook_id:id}/deliveries": webhooks.Deliveries(db, queries),
        "/webhooks/{webhook_id:id}/redeliver": webhooks.Redeliver(db, queries),
        "/alerts": alerts.PagerDutyEvents(db, queries),
        "/alerts/alertmanager": alerts.AlertmanagerNotifications(db, queries),
    }
    for template, resource in routes.items():
        app.add_route(template, resource)
    app.add_static_route("/docs/assets", str(docs.swagger_ui_dir()))
    openapi_document.publish(openapi.document(routes))
