"""The connection pool of one worker process, and one connection per request."""

import contextlib
import contextvars
import select
import time
import weakref

import orjson
import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from api import metrics
from api.replica import Replica

# NOTE: a request that waited the whole pool timeout while the database is down would hold its
# client that long, and every request behind it. So a request stops waiting as soon as the pool
# fails to open a new connection (checked every WAIT_SLICE); then requests fail at once for
# DOWN_SECONDS, and after that wait at most PROBE_TIMEOUT until a connection works again.
WAIT_SLICE = 0.2
DOWN_SECONDS = 1.0
PROBE_TIMEOUT = 0.5
# NOTE: psycopg_pool backs off exponentially while reconnecting; giving up early makes the next
# request start a fresh attempt, so the service is back within seconds of the database.
RECONNECT_TIMEOUT = 2.0
# PERF: a connection is pinged before use only when it sat idle this long (a restart or an idle
# timeout may have closed it meanwhile); pinging on every checkout cost a round trip per request.
# One in steady use that breaks fails its request with a 503 and is replaced.
IDLE_CHECK_SECONDS = 1.0
# NOTE: while every replica connection is busy, a read goes to the primary after this wait
# rather than queueing: the primary has spare connections more often than not.
REPLICA_CHECKOUT_SECONDS = 0.1


class DatabaseUnavailable(psycopg.OperationalError):
    """The database was found unreachable moments ago; raised without trying again."""


class PoolBusy(psycopg.OperationalError):
    """Every connection stayed out serving other requests for POOL_TIMEOUT: an overload, not
    an outage."""


class Database:
    """A psycopg AsyncConnectionPool, made and opened by open(): each worker opens it at ASGI
    startup, after gunicorn forked it, on the worker's own event loop.

    A request (begin_request() to end_request()) holds one connection: read() gives it in
    autocommit, write() gives it inside the request's one transaction. With a streaming
    replica (DATABASE_REPLICA_URL), a request that allow_replica() let may take a second
    connection, to the replica, that its read()s give instead."""

    def __init__(self, config):
        self.config = config
        self._pool = None
        self._down_at = None  # time.monotonic() when the database was last found unreachable
        self._request = contextvars.ContextVar("request", default=None)
        self._check = CheckBeforeUse(on_goodbye=False)
        self.replica = None  # a Replica while open with DATABASE_REPLICA_URL

    async def open(self, timeout=10.0):
        """New pools, opened on the running event loop (so a closed Database may open again)."""
        config = self.config
        self._pool = new_pool(config, config.database_url, config.pool_timeout, self._check)
        await self._pool.open(wait=True, timeout=timeout)
        if config.database_pooler:
            try:
                async with self._pool.connection() as conn:
                    await check_session_defaults(conn, config)
            except SessionDefaultsMissing:
                await self._pool.close()
                raise
        if config.database_replica_url:
            check = CheckBeforeUse(on_goodbye=True)
            replica_pool = new_pool(config, config.database_replica_url, REPLICA_CHECKOUT_SECONDS, check)
            self.replica = Replica(replica_pool, config.replica_max_lag, check)
            await self.replica.open()

    async def close(self):
        await self._pool.close()
        if self.replica is not None:
            await self.replica.close()
            self.replica = None

    def pool_stats(self):
        """psycopg_pool's figures (pool_size, pool_available, requests_waiting, …) of each pool
        by its name: primary, and replica while open with DATABASE_REPLICA_URL; empty before
        open()."""
        if self._pool is None:
            return {}
        stats = {"primary": self._pool.get_stats()}
        if self.replica is not None:
            stats["replica"] = self.replica.pool_stats()
        return stats

    def begin_request(self):
        """Starts a request in this asyncio task: it gets one connection, checked out by its
        first read() or write() (a request that never queries takes none), and returned by
        end_request()."""
        scope = RequestScope()
        scope.token = self._request.set(scope)
        return scope

    async def end_request(self, scope):
        self._request.reset(scope.token)
        if scope.conn is not None:
            await self._putconn(scope.conn)
        if scope.replica_conn is not None:
            await self.replica.putconn(scope.replica_conn)

    def allow_replica(self, written_up_to):
        """Lets this request's reads go to the replica if, when it first reads, the replica is
        up, within REPLICA_MAX_LAG and has replayed the WAL up to `written_up_to` (the caller's
        own last write). Only for a request that writes nothing."""
        self._request.get().replica_after = written_up_to

    @contextlib.asynccontextmanager
    async def background(self):
        """A connection for work outside any request (the retention job, waking the delivery
        workers), in autocommit as read() gives it, returned when the block ends."""
        scope = self.begin_request()
        try:
            async with self.read() as conn:
                yield conn
        finally:
            await self.end_request(scope)

    @contextlib.asynccontextmanager
    async def read(self):
        """The request's connection (its replica connection, if allow_replica() let it take one).
        In autocommit, each statement sees its own snapshot; inside a write() block, it reads in
        that block's transaction."""
        scope = self._request.get()
        if scope.replica_after is not None:
            await self._choose_server(scope)
        if scope.replica_conn is None:
            async with self._connection() as conn:
                yield conn
            return
        try:
            yield scope.replica_conn
        except psycopg.OperationalError:
            if scope.replica_conn.broken:
                self.replica.down()
            raise

    async def _choose_server(self, scope):
        """Once per request: the replica if it serves the request's reads, else the primary."""
        if self.replica.serves(scope.replica_after):
            scope.replica_conn = await self.replica.getconn()
        scope.replica_after = None
        metrics.REPLICA_READS.labels("primary" if scope.replica_conn is None else "replica").inc()

    @contextlib.asynccontextmanager
    async def write(self, one_statement=False):
        """The request's connection inside its one transaction, committed when the outermost
        write() block ends and rolled back if it raises; a write() inside a write() joins it.
        PERF: a block of `one_statement` needs no BEGIN and COMMIT (the statement commits or
        fails whole by itself), unless it is inside a transaction already."""
        async with self._connection() as conn:
            if one_statement or conn.info.transaction_status != TransactionStatus.IDLE:
                yield conn
            else:
                async with conn.transaction():
                    yield conn
        self._request.get().wrote = True

    @contextlib.asynccontextmanager
    async def _connection(self):
        scope = self._request.get()
        if scope.conn is None:
            scope.conn = await self._checkout()
        try:
            yield scope.conn
        except psycopg.OperationalError:
            if scope.conn.broken:
                self._down_at = time.monotonic()
            raise

    async def _checkout(self):
        timeout = self.config.pool_timeout
        if self._down_at is not None:
            if time.monotonic() - self._down_at < DOWN_SECONDS:
                raise DatabaseUnavailable("the database was unreachable moments ago")
            timeout = min(timeout, PROBE_TIMEOUT)
        conn = await self._getconn(timeout)
        self._down_at = None
        return conn

    async def _putconn(self, conn):
        self._check.returned(conn)
        await self._pool.putconn(conn)

    async def _getconn(self, timeout):
        """A connection within `timeout`, or PoolTimeout: sooner, and the database counts as
        down, once the pool failed to connect; at the deadline when its connections were all
        busy (an overload, not an outage). NOTE: waiting in slices would send a waiter to the
        back of the pool's queue after each slice, so while every connection is out serving a
        request, a waiter waits out the rest in one go, first come first served."""
        stats = self._pool.get_stats()
        failures = stats.get("connections_errors", 0)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            all_busy = stats.get("pool_size", 0) > 0 and stats.get("pool_available", 0) == 0
            wait = left if all_busy else min(WAIT_SLICE, left)
            try:
                return await self._pool.getconn(timeout=max(wait, 0.001))
            except PoolTimeout:
                stats = self._pool.get_stats()
                if stats.get("connections_errors", 0) > failures:
                    self._down_at = time.monotonic()
                    raise
                if time.monotonic() >= deadline:
                    if all_busy:
                        raise PoolBusy("every connection stayed busy for the pool timeout") from None
                    raise


class CheckBeforeUse:
    """A pool's `check`: pings a connection before use only when it sat idle IDLE_CHECK_SECONDS,
    or, `on_goodbye`, when its socket has something to read. An idle connection gets nothing
    unasked, except a server's goodbye: a replica that was shut down or killed is found out
    before a request runs on it, without a round trip (one select() on the socket), and the
    request reads from the primary. NOTE: not for the primary's pool: a failed check makes
    psycopg_pool try the next connection until the checkout's deadline, so during an outage a
    request that found every connection busy would wait all of POOL_TIMEOUT instead of a 503."""

    def __init__(self, on_goodbye):
        self._on_goodbye = on_goodbye
        self._returned_at = weakref.WeakKeyDictionary()  # connection -> time.monotonic()

    def returned(self, conn):
        self._returned_at[conn] = time.monotonic()

    async def __call__(self, conn):
        idle = time.monotonic() - self._returned_at.get(conn, 0.0) >= IDLE_CHECK_SECONDS
        if idle or (self._on_goodbye and select.select([conn.pgconn.socket], [], [], 0)[0]):
            await AsyncConnectionPool.check_connection(conn)


def new_pool(config, url, timeout, check):
    """An AsyncConnectionPool of the app's connections to `url`, not yet open."""
    return AsyncConnectionPool(
        url,
        min_size=config.pool_min_size,
        max_size=config.pool_max_size,
        timeout=timeout,
        reconnect_timeout=RECONNECT_TIMEOUT,
        check=check,
        configure=decode_json_with_orjson,
        open=False,
        kwargs=connection_kwargs(config),
    )


async def decode_json_with_orjson(conn):
    """PERF: json columns (each incident's categories) decoded by orjson, not the json module:
    a 50-item list took 540 instead of 640 µs of app CPU."""
    set_json_loads(orjson.loads, conn)


class RequestScope:
    """The connection one request holds from its first query to its end."""

    conn = None
    token = None
    replica_conn = None
    replica_after = None  # set by allow_replica() until the first read()
    wrote = False  # whether a write() block of the request completed


@contextlib.asynccontextmanager
async def snapshot(conn):
    """`conn` (in autocommit) inside a read-only transaction whose statements all see one
    snapshot (REPEATABLE READ), for a request that reads with more than one statement."""
    await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
    await conn.set_read_only(True)
    try:
        async with conn.transaction():
            yield conn
    finally:
        await conn.set_isolation_level(None)
        await conn.set_read_only(None)


def connect(database_url):
    """A plain connection for the command line and tests, set up like the pool's but without a
    statement_timeout (a bulk load or a report may take long)."""
    return psycopg.connect(
        database_url, autocommit=True, row_factory=dict_row, options="-c TimeZone=UTC -c statement_timeout=0"
    )


def session_settings(config):
    """What every connection of the app runs with. PERF: no JIT (it cost ~0.9 s on stats)."""
    return {"timezone": "UTC", "statement_timeout": str(config.statement_timeout_ms), "jit": "off"}


def connection_kwargs(config):
    """psycopg.connect() arguments of the app's connections. Directly to PostgreSQL, the session
    settings go along as startup options. Through a pooler in transaction mode they cannot (PgBouncer
    refuses startup options), so they must be the role's defaults (save_session_defaults), and no
    statement is prepared: a prepared statement lives in one server session, and the next
    transaction of the same client may run in another."""
    kwargs = {"autocommit": True, "row_factory": dict_row}
    if config.database_pooler == "transaction":
        kwargs["prepare_threshold"] = None
    else:
        kwargs["options"] = " ".join(f"-c {name}={value}" for name, value in session_settings(config).items())
    return kwargs


def save_session_defaults(conn, config):
    """Makes session_settings(config) the defaults of the connected role in the connected database
    (ALTER ROLE ... IN DATABASE), so that sessions get them without a statement of their own,
    also through a pooler. Sessions opened before keep what they had."""
    database = conn.execute("SELECT current_database() AS name").fetchone()["name"]
    for name, value in session_settings(config).items():
        conn.execute(
            sql.SQL("ALTER ROLE CURRENT_USER IN DATABASE {} SET {} = {}").format(
                sql.Identifier(database), sql.Identifier(name), sql.Literal(value)
            )
        )


class SessionDefaultsMissing(RuntimeError):
    pass


async def check_session_defaults(conn, config):
    """Through a pooler, refuses to serve on a session whose settings differ from the config's."""
    cursor = await conn.execute(
        "SELECT lower(name) AS name, setting FROM pg_settings WHERE lower(name) = ANY(%s)",
        [list(session_settings(config))],
    )
    found = {row["name"]: row["setting"] for row in await cursor.fetchall()}
    if found != session_settings(config):
        raise SessionDefaultsMissing(
            f"Through DATABASE_POOLER=transaction the database sessions must already have the app's "
            f"settings, but they have {found}. Run `python -m api migrate` with the same "
            f"STATEMENT_TIMEOUT_MS against the database (it saves them as the role's defaults), "
            f"then reconnect the pooler's server connections (PgBouncer: RECONNECT)."
        )
