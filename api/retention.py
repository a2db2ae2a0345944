"""The retention job: every served worker runs it in the background from ASGI startup, every
RETENTION_INTERVAL_SECONDS; one worker at a time deletes (an advisory lock), in batches, what no
request needs any more (feed events and webhook delivery logs after EVENT_RETENTION_DAYS)."""

import asyncio
import logging
import random

import psycopg

from api.resources.tokens import THROTTLE

log = logging.getLogger("api")
BATCH = 5000  # rows per statement: no lock held long, no long transaction


async def run_every(interval, db, queries):
    """Rounds until cancelled (at shutdown); a failed round is logged and tried again later."""
    while True:
        # NOTE: jittered, so that workers started together do not all try at once.
        await asyncio.sleep(interval * random.uniform(0.5, 1.5))
        try:
            await purge(db, queries)
        except psycopg.Error as ex:
            log.warning("retention round failed: %s", type(ex).__name__)


async def purge(db, queries):
    """One round: {table: rows deleted}, or None when another worker was deleting meanwhile."""
    async with db.background() as conn:
        deleted = {}
        for table, purge_batch, params in _purges(db, queries):
            deleted[table] = await _all(queries, purge_batch, conn, **params)
            if deleted[table] is None:
                return None
        return deleted


def _purges(db, queries):
    return [
        ("api_tokens", queries.purge_expired_tokens, {}),
        ("idempotency_keys", queries.purge_idempotency_keys, {}),
        ("login_failures", queries.purge_login_failures, {"window": THROTTLE["window"]}),
        ("events", queries.purge_events, {"days": db.config.event_retention_days}),
        ("webhook_deliveries", queries.purge_webhook_deliveries, {"days": db.config.event_retention_days}),
    ]


async def _all(queries, purge_batch, conn, **params):
    """Batch after batch, each its own short transaction holding the advisory lock; None as soon
    as another worker holds it."""
    total = 0
    while True:
        async with conn.transaction():
            if not await queries.claim_retention(conn):
                return None
            deleted = await purge_batch(conn, batch=BATCH, **params)
        total += deleted
        if deleted < BATCH:
            return total
