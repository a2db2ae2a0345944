"""The retention job: every served worker runs it in the background from ASGI startup, every
RETENTION_INTERVAL_SECONDS; one worker at a time does a round (an advisory lock), deleting in
batches what no request needs any more (feed events and webhook delivery logs after EVENT_RETENTION_DAYS)."""

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
    """One round: {table: rows deleted}, or None when another worker holds the round."""
    scope = db.begin_request()
    try:
        async with db.read() as conn:
            if not await queries.claim_retention(conn):
                return None
            try:
                return {
                    "api_tokens": await _all(queries.purge_expired_tokens, conn),
                    "idempotency_keys": await _all(queries.purge_idempotency_keys, conn),
                    "login_failures": await _all(
                        queries.purge_login_failures, conn, window=THROTTLE["window"]
                    ),
                    "events": await _all(queries.purge_events, conn, days=db.config.event_retention_days),
                    "webhook_deliveries": await _all(
                        queries.purge_webhook_deliveries, conn, days=db.config.event_retention_days
                    ),
                }
            finally:
                await queries.release_retention(conn)
    finally:
        await db.end_request(scope)


async def _all(purge_batch, conn, **params):
    total = 0
    while True:
        deleted = await purge_batch(conn, batch=BATCH, **params)
        total += deleted
        if deleted < BATCH:
            return total
