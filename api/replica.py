"""The optional streaming replica (DATABASE_REPLICA_URL): its pool, and whether a request may
read from it.

A request may read from the replica when its resource says so (`replica_methods`) and the
replica is known to be (1) up, (2) no more than REPLICA_MAX_LAG behind the primary and (3) past
the caller's own last write (read-your-writes). Otherwise it reads from the primary.

How far behind: every PROBE_SECONDS each worker notes the primary's WAL position and then asks
the replica how far it has replayed. Once the replica has replayed a position the primary had
at time t, it holds everything committed before t: it is at most `now - t` behind. (Its own
replay timestamp would not do: a replica cut off from its primary looks fresh by it.)

Read-your-writes: after a request's write commits, the primary notes the WAL position its
writer has reached (`mark_write`, an unlogged table: no WAL flush, nothing replicated); the
writer's next request reads from the replica only once the replica has replayed past it."""

import asyncio
import collections
import logging
import time

import psycopg
from psycopg_pool import PoolTimeout

from api import metrics

PROBE_SECONDS = 0.25
# NOTE: a probe waits longer than a read for a replica connection (reads may hold them all, and a
# new one takes a while on a busy machine): the replica counts as down only when none comes.
PROBE_TIMEOUT = 1.0
log = logging.getLogger("api")


class Replica:
    """A pool of connections to the replica (with its `check`, told when a connection comes back)
    and what the probes found out about the replica."""

    def __init__(self, pool, max_lag, check):
        self.max_lag = max_lag
        self._pool = pool
        self._check = check
        self.replayed = None  # the WAL position (an int) the replica had replayed at the last probe
        self._fresh_at = None  # time.monotonic() of the newest primary position the replica holds
        self._unreplayed = collections.deque(maxlen=1000)  # (time, primary position), oldest first

    async def open(self):
        # NOTE: a replica that is down at startup must not keep the service from starting.
        await self._pool.open(wait=False)

    async def close(self):
        await self._pool.close()

    def pool_stats(self):
        return self._pool.get_stats()

    def lag(self):
        """At most how many seconds the replica is behind the primary (None: unknown or down)."""
        return None if self._fresh_at is None else time.monotonic() - self._fresh_at

    def serves(self, written_up_to):
        """Whether a read that must see the WAL position `written_up_to` may go to the replica."""
        lag = self.lag()
        return lag is not None and lag <= self.max_lag and self.replayed >= written_up_to

    async def getconn(self):
        """A replica connection, or None when none comes within the pool's timeout (a
        replica that went down counts as down from the next probe on)."""
        try:
            return await self._pool.getconn()
        except PoolTimeout:
            return None

    async def putconn(self, conn):
        self._check.returned(conn)
        await self._pool.putconn(conn)

    def down(self):
        self._fresh_at = None

    async def probe(self, queries, primary):
        """Notes the primary's position (on the `primary` connection), then the replica's."""
        self._unreplayed.append((time.monotonic(), await queries.primary_position(primary)))
        try:
            async with self._pool.connection(timeout=PROBE_TIMEOUT) as conn:
                replayed = await queries.replayed_position(conn)
        except (psycopg.Error, PoolTimeout):
            replayed = None
        if replayed is None:  # down, or not a replica (any more: it may have been promoted)
            self.down()
            return
        self.replayed = replayed
        while self._unreplayed and self._unreplayed[0][1] <= replayed:
            self._fresh_at = self._unreplayed.popleft()[0]
        lag = self.lag()
        if lag is not None:
            metrics.REPLICA_LAG.set(lag)

    async def watch(self, db, queries):
        """Probes every PROBE_SECONDS for as long as the worker runs."""
        while True:
            try:
                async with db.background() as primary:
                    await self.probe(queries, primary)
            except psycopg.Error as ex:
                log.warning("could not read the primary's WAL position: %s", type(ex).__name__)
            await asyncio.sleep(PROBE_SECONDS)
