"""The connection pool of one process, and one transaction per request."""
import contextlib
import contextvars
import time
import weakref

import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

# NOTE: a worker (one request at a time) that waited the whole pool timeout for each request
# while the database is down would hold every client queued behind it. So a request stops
# waiting as soon as the pool fails to open a new connection (checked every WAIT_SLICE); then
# requests fail at once for DOWN_SECONDS, and after that wait at most PROBE_TIMEOUT until a
# connection works again.
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


class DatabaseUnavailable(psycopg.OperationalError):
    """The database was found unreachable moments ago; raised without trying again."""


class Database:
    """A psycopg pool created closed: gunicorn opens it in each worker after the fork."""

    def __init__(self, config):
        self._pool = ConnectionPool(
            config.database_url,
            min_size=config.pool_min_size,
            max_size=config.pool_max_size,
            timeout=config.pool_timeout,
            reconnect_timeout=RECONNECT_TIMEOUT,
            check=self._check_if_idle,
            configure=decode_json_with_orjson,
            open=False,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                # PERF: no JIT (it cost ~0.9 s on stats).
                "options": f"-c TimeZone=UTC -c statement_timeout={config.statement_timeout_ms}"
                           " -c jit=off",
            },
        )
        self._timeout = config.pool_timeout
        self._down_at = None  # time.monotonic() when the database was last found unreachable
        self._request = contextvars.ContextVar("request_transaction", default=None)
        self._held = contextvars.ContextVar("request_connection", default=None)
        self._returned_at = weakref.WeakKeyDictionary()  # connection -> time.monotonic()

    def open(self, timeout=10.0):
        self._pool.open(wait=True, timeout=timeout)

    def close(self):
        self._pool.close()

    @contextlib.contextmanager
    def read(self):
        """An autocommit connection: each statement is its own snapshot."""
        if (conn := self._request.get()) is not None:
            yield conn
            return
        with self._connection() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self):
        """A connection inside one transaction, rolled back if the block raises."""
        if (conn := self._request.get()) is not None:
            with conn.transaction():  # a savepoint in the request's transaction
                yield conn
            return
        with self._connection() as conn, conn.transaction():
            yield conn

    @contextlib.contextmanager
    def request_transaction(self):
        """One transaction that every read() and write() inside the block joins."""
        with self._connection() as conn, conn.transaction():
            token = self._request.set(conn)
            try:
                yield conn
            finally:
                self._request.reset(token)

    @contextlib.contextmanager
    def request_scope(self):
        """Within the block (one HTTP request), the first read() or write() checks a connection
        out and the later ones reuse it: one checkout per request."""
        held = HeldConnection(self._checkout)
        token = self._held.set(held)
        try:
            yield
        finally:
            self._held.reset(token)
            held.release()

    @contextlib.contextmanager
    def _connection(self):
        held = self._held.get()
        with contextlib.nullcontext(held.get()) if held else self._checkout() as conn:
            try:
                yield conn
            except psycopg.OperationalError:
                if conn.broken:
                    self._down_at = time.monotonic()
                raise

    @contextlib.contextmanager
    def _checkout(self):
        timeout = self._timeout
        if self._down_at is not None:
            if time.monotonic() - self._down_at < DOWN_SECONDS:
                raise DatabaseUnavailable("the database was unreachable moments ago")
            timeout = min(timeout, PROBE_TIMEOUT)
        conn = self._getconn(timeout)
        self._down_at = None
        try:
            yield conn
        finally:
            self._returned_at[conn] = time.monotonic()
            self._pool.putconn(conn)

    def _check_if_idle(self, conn):
        if time.monotonic() - self._returned_at.get(conn, 0.0) >= IDLE_CHECK_SECONDS:
            ConnectionPool.check_connection(conn)

    def _getconn(self, timeout):
        """A connection within `timeout`, or PoolTimeout sooner once the pool failed to connect."""
        failures = self._connection_errors()
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._pool.getconn(timeout=max(min(WAIT_SLICE, deadline - time.monotonic()), 0.001))
            except PoolTimeout:
                if time.monotonic() >= deadline or self._connection_errors() > failures:
                    self._down_at = time.monotonic()
                    raise

    def _connection_errors(self):
        return self._pool.get_stats().get("connections_errors", 0)


def decode_json_with_orjson(conn):
    """PERF: json columns (each incident's categories) decoded by orjson, not the json module:
    a 50-item list took 540 instead of 640 µs of app CPU."""
    set_json_loads(orjson.loads, conn)


class HeldConnection:
    """The connection one request holds from the moment it first needs one."""

    def __init__(self, checkout):
        self._checkout = checkout
        self._stack = contextlib.ExitStack()
        self._conn = None

    def get(self):
        if self._conn is None:
            self._conn = self._stack.enter_context(self._checkout())
        return self._conn

    def release(self):
        self._stack.close()


def connect(database_url):
    """A plain connection for the command line and tests, set up like the pool's."""
    return psycopg.connect(database_url, autocommit=True, row_factory=dict_row,
                           options="-c TimeZone=UTC")
