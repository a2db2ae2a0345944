"""GET /metrics: the Prometheus figures of every worker, for the holder of METRICS_TOKEN."""

import asyncio
import hashlib
import hmac

import falcon
import psycopg

from api import metrics
from api.errors import Problem
from api.operations import operation
from api.resources.common import Resource

FEED_TIMEOUT_SECONDS = 0.5


class Metrics(Resource):
    # NOTE: no user session: AuthMiddleware lets it through, and it checks METRICS_TOKEN itself.
    auth_required = False

    def __init__(self, db, queries, pool_figures):
        super().__init__(db, queries)
        self._pool_figures = pool_figures
        token = db.config.metrics_token
        self._token_digest = token and digest(token)

    @operation(
        "Scrape the Prometheus metrics",
        response={"type": "string"},
        media_type=metrics.CONTENT_TYPE,
        errors=(404,),
        security="metrics_token",
        description="Requests by route template, method and status, latency histograms, pool and "
        "database figures, the change feed's newest position and webhook figures, added up over all "
        "workers. Needs `Authorization: Bearer <METRICS_TOKEN>` (a user's token is a 401); a 404 "
        "while the server's METRICS_TOKEN is unset.",
    )
    async def on_get(self, req, resp):
        if not self._token_digest:
            raise Problem(falcon.HTTP_404, "Metrics are off: METRICS_TOKEN is not set.")
        self._check_token(req)
        self._pool_figures.refresh()
        read_now = await self._read_database_figures()
        resp.content_type = metrics.CONTENT_TYPE
        # PERF: reading every worker's files took ~7 ms per worker (40 routes): off the event
        # loop, so the worker's other requests are not held up for it.
        resp.data = await asyncio.to_thread(metrics.exposition, read_now)

    def _check_token(self, req):
        scheme, _, token = (req.get_header("Authorization") or "").partition(" ")
        # APPSEC: digests of equal length compared in constant time; a user's token never matches.
        sent = digest(token.strip()) if scheme.lower() == "bearer" else b""
        if not hmac.compare_digest(sent, self._token_digest):
            raise Problem(
                falcon.HTTP_401,
                "Send 'Authorization: Bearer <METRICS_TOKEN>'; a user's token does not open the metrics.",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )

    async def _read_database_figures(self):
        """Sets the gauges read from the database; the counters it keeps, as metric families."""
        # NOTE: the metrics matter most while the database is in trouble: without an answer
        # within FEED_TIMEOUT_SECONDS, the gauges keep their last values, the database's
        # counters are left out (this worker's last reading may be older than one another
        # worker served since, and a counter must never fall) and the rest is served.
        try:
            async with asyncio.timeout(FEED_TIMEOUT_SECONDS), self._db.read() as conn:
                metrics.FEED_POSITION.set(await self._queries.feed_position(conn))
                webhooks = await self._queries.webhook_figures(conn)
        except (psycopg.OperationalError, TimeoutError):
            return ()
        for state in ("active", "failing", "disabled"):
            metrics.WEBHOOKS.labels(state).set(webhooks[state])
        metrics.WEBHOOK_DELIVERY_LAG.set(webhooks["delivery_lag_seconds"])
        return (metrics.webhook_deliveries(webhooks["delivered"], webhooks["failed"]),)


def digest(token):
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
