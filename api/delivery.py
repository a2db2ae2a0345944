"""The webhook delivery worker, `python -m api deliver` (make run starts it beside gunicorn).

Each active webhook with something due is claimed with a session advisory lock (claim_due_webhooks),
so that however many workers run, one at a time sends to a webhook: its queued redeliveries,
then the feed's events after its cursor, in position order, one in flight. A success moves the
cursor (and so does the claim, past final events a webhook does not subscribe to); a failure
schedules a retry (WEBHOOK_RETRY_SCHEDULE, with jitter) or disables the webhook. Everything
lives in the database, so a worker that dies, loses the database or meets a receiver that is
down loses nothing: the event is sent again (at least once; receivers
deduplicate by `webhook-id`). The worker wakes on NOTIFY webhook_delivery (the web workers send
it after writes, api/app.py WakeDelivery), when a retry it scheduled is due, and polls every
POLL_SECONDS, so a lost notification only delays."""

import asyncio
import contextlib
import logging
import random
import signal
import time

import orjson
import psycopg
from psycopg.rows import dict_row

from api import webhooks
from api.config import ConfigError
from api.resources.events import present

log = logging.getLogger("api.delivery")
POLL_SECONDS = 1.0
RECONNECT_SECONDS = (0.5, 1, 2, 5, 10)
JITTER = 0.1  # a retry waits its scheduled time ± 10%
BATCH = 100  # messages read, then sent one at a time
RECORD_SECONDS = 1.0  # deliveries are recorded together, at most this long after the last record
GONE = "The receiver answered 410 Gone."  # which disables the webhook, whatever was sent


async def run(config, queries, stop):
    """Delivers until `stop` is set, reconnecting (with back-off) whenever the database is lost."""
    failures = 0
    async with webhooks.session(config.webhook_allowed_networks) as client:
        while not stop.is_set():
            try:
                await Worker(config, queries, client).serve(stop)
            except Exception as ex:
                wait = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                failures += 1
                if isinstance(ex, psycopg.OperationalError):
                    log.warning(
                        "delivery: the database is unreachable (%s); again in %s s", type(ex).__name__, wait
                    )
                else:
                    log.exception("delivery: the worker failed; it starts again in %s s", wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
            else:
                failures = 0


class Worker:
    def __init__(self, config, queries, client):
        self._config = config
        self._queries = queries
        self._client = client
        self._deliveries = {}  # webhook id -> its task
        self._wake = asyncio.Event()
        self._failure = None

    async def serve(self, stop):
        async with await _connect(self._config) as listener, await _connect(self._config) as conn:
            await listener.execute("LISTEN webhook_delivery")
            listening = asyncio.create_task(self._listen(listener))
            try:
                while not stop.is_set():
                    self._raise_failure(listening)
                    await self._claim(conn)
                    await self._sleep(stop)
            finally:
                tasks = [listening, *self._deliveries.values()]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    def _raise_failure(self, listening):
        """Re-raises what stopped the listener or a delivery (the database lost, mostly)."""
        if listening.done():
            listening.result()
        if self._failure is not None:
            raise self._failure

    async def _listen(self, listener):
        async for _ in listener.notifies():
            self._wake.set()

    async def _claim(self, conn):
        for row in await self._queries.claim_due_webhooks(conn, busy=list(self._deliveries)):
            task = asyncio.create_task(self._deliver(conn, row["id"]))
            self._deliveries[row["id"]] = task
            task.add_done_callback(lambda task, webhook_id=row["id"]: self._done(webhook_id, task))

    def _done(self, webhook_id, task):
        # NOTE: the webhook may have been claimed again (its lock is this session's) between
        # this task's release of it and this callback.
        if self._deliveries.get(webhook_id) is task:
            del self._deliveries[webhook_id]
        if not task.cancelled() and task.exception() is not None:
            self._failure = task.exception()
        self._wake.set()

    async def _sleep(self, stop):
        stopping = asyncio.ensure_future(stop.wait())
        woken = asyncio.ensure_future(self._wake.wait())
        await asyncio.wait([stopping, woken], timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        woken.cancel()
        self._wake.clear()

    async def _deliver(self, conn, webhook_id):
        """Sends to one claimed webhook until nothing is due or an attempt fails; then lets it go."""
        try:
            while batch := await self._queries.next_deliveries(conn, webhook_id=webhook_id, limit=BATCH):
                if not await self._send_batch(conn, webhook_id, batch):
                    return
        finally:
            with contextlib.suppress(psycopg.Error):
                await self._queries.release_webhook(conn, id=webhook_id)

    async def _send_batch(self, conn, webhook_id, batch):
        """Sends `batch` in order and records it; False at the first failure of an event after
        the cursor (the rest waits for its retry), at a 410 to a redelivery (which disables the
        webhook), or once the webhook was changed meanwhile (deactivated, or patched).
        PERF: deliveries are recorded together, at most RECORD_SECONDS apart (a worker that dies
        before sends them again)."""
        delivered = Delivered(webhook_id, batch[0]["cursor"], batch[0]["updated_at"])
        try:
            for item in batch:
                attempt = await self._send(item)
                if item["redelivery"]:
                    gone = GONE if attempt.status_code == 410 else None
                    await self._queries.record_redelivery(
                        conn, **_log_columns(webhook_id, item, attempt), disabled_reason=gone
                    )
                    if gone:
                        return False
                elif attempt.delivered:
                    delivered.add(item, attempt)
                    if delivered.overdue() and not await delivered.record(conn, self._queries):
                        return False
                else:
                    await delivered.record(conn, self._queries)
                    number = delivered.attempt_number(item)
                    outcome = failure(self._config.webhook_retry_schedule, number, attempt)
                    await self._queries.record_failure(
                        conn,
                        **_log_columns(webhook_id, item, attempt),
                        attempt=number,
                        cursor=delivered.cursor,
                        updated_at=delivered.updated_at,
                        **outcome,
                    )
                    self._wake_after(outcome["retry_seconds"])
                    return False
        finally:
            await delivered.record(conn, self._queries)
        return True

    def _wake_after(self, seconds):
        """Claims again when a retry is due, rather than at the next poll after it."""
        asyncio.get_running_loop().call_later(seconds, self._wake.set)

    async def _send(self, item):
        event = present(item)
        attempt = await webhooks.send(
            self._client,
            item["url"],
            [item["secret"], item["previous_secret"]],
            event["id"],
            orjson.dumps(event),
            self._config.webhook_allowed_networks,
        )
        if not attempt.delivered:
            log.warning("delivery: %s to %s failed: %s", event["id"], item["url"], attempt.error)
        return attempt


class Delivered:
    """Deliveries of events after a webhook's cursor, not yet recorded."""

    def __init__(self, webhook_id, cursor, updated_at):
        self.webhook_id = webhook_id
        self.cursor = cursor  # as recorded
        self.updated_at = updated_at  # the webhook's, when the batch was read
        self._rows = []
        self._recorded_at = time.monotonic()

    def overdue(self):
        return time.monotonic() - self._recorded_at >= RECORD_SECONDS

    def attempt_number(self, item):
        """The attempt this is at `item`: the first event after the cursor may have failed before."""
        return item["failures"] + 1 if item["cursor"] == self.cursor and not self._rows else 1

    def add(self, item, attempt):
        self._rows.append(
            (item["position"], self.attempt_number(item), attempt.status_code, attempt.duration_ms)
        )

    async def record(self, conn, queries):
        """Records the deliveries; False when the webhook was deactivated or changed meanwhile
        (then only the log keeps them)."""
        if not self._rows:
            return True
        positions, attempts, status_codes, durations = map(list, zip(*self._rows, strict=True))
        moved = await queries.record_delivered(
            conn,
            webhook_id=self.webhook_id,
            cursor=self.cursor,
            updated_at=self.updated_at,
            positions=positions,
            attempts=attempts,
            status_codes=status_codes,
            durations_ms=durations,
        )
        self.cursor, self._rows, self._recorded_at = positions[-1], [], time.monotonic()
        return moved == 1


def failure(schedule, attempt_number, attempt):
    """What a failed attempt at the event after the cursor leads to: a retry after its scheduled
    time, or the webhook disabled (on 410 Gone, or when every retry of the schedule failed)."""
    if attempt.status_code == 410:
        reason = GONE
    elif attempt_number > len(schedule):
        reason = f"{attempt_number} attempts to deliver one event failed; the last: {attempt.error}."
    else:
        wait = schedule[attempt_number - 1] * random.uniform(1 - JITTER, 1 + JITTER)
        return {"retry_seconds": wait, "disabled_reason": None}
    return {"retry_seconds": 0, "disabled_reason": reason}


def _log_columns(webhook_id, item, attempt):
    return {
        "webhook_id": webhook_id,
        "event_id": f"evt_{item['position']}",
        "position": item["position"],
        "status_code": attempt.status_code,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }


def database_url(config):
    """The worker holds session advisory locks and LISTENs, which a pooler in transaction mode
    would break: behind one, it needs PostgreSQL itself (or a session-mode pool) by
    DELIVERY_DATABASE_URL."""
    if config.delivery_database_url:
        return config.delivery_database_url
    if config.database_pooler == "transaction":
        raise ConfigError(
            "DATABASE_POOLER=transaction: set DELIVERY_DATABASE_URL to PostgreSQL itself (or to a "
            "session-mode pool) for the delivery worker, which holds session locks and LISTENs"
        )
    return config.database_url


async def _connect(config):
    return await psycopg.AsyncConnection.connect(
        database_url(config),
        autocommit=True,
        row_factory=dict_row,
        options="-c TimeZone=UTC",
        connect_timeout=5,
        application_name="incidents-delivery",
    )


def main(config, queries):
    """Runs the worker until SIGTERM or SIGINT."""
    database_url(config)  # a ConfigError now rather than a retry loop
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    async def serve():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        log.info("delivery: worker started")
        await run(config, queries, stop)
        log.info("delivery: worker stopped")

    asyncio.run(serve())
