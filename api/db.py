"""The connection pool of one process, and one transaction per request."""
import contextlib

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool


class Database:
    """A psycopg pool created closed: gunicorn opens it in each worker after the fork."""

    def __init__(self, config):
        self._pool = ConnectionPool(
            config.database_url,
            min_size=config.pool_min_size,
            max_size=config.pool_max_size,
            timeout=config.pool_timeout,
            check=ConnectionPool.check_connection,
            open=False,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "options": f"-c TimeZone=UTC -c statement_timeout={config.statement_timeout_ms}",
            },
        )

    def open(self, timeout=10.0):
        self._pool.open(wait=True, timeout=timeout)

    def close(self):
        self._pool.close()

    @contextlib.contextmanager
    def read(self):
        """An autocommit connection: each statement is its own snapshot."""
        with self._pool.connection() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self):
        """A connection inside one transaction, rolled back if the block raises."""
        with self._pool.connection() as conn, conn.transaction():
            yield conn


def connect(database_url):
    """A plain connection for the command line and tests, set up like the pool's."""
    return psycopg.connect(database_url, autocommit=True, row_factory=dict_row,
                           options="-c TimeZone=UTC")
