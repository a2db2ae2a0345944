"""Runs one statement on an AsyncConnection beneath psycopg's cursors: libpq's calls on the
connection's `pgconn`, psycopg's adapters (a Transformer with the connection's dumpers and
loaders) for parameters and rows, psycopg's exception classes for errors, and its
AsyncConnection.wait() for the socket (which also cancels the statement in the server if the
waiting task is cancelled).

PERF: psycopg's AsyncCursor spends about twice the client CPU of this on each statement (a
cursor, its result and row-maker set-up, the prepared-statement bookkeeping): measured in
bench/README.md, "The driver beneath the cursors".

A statement is prepared on its first run on a connection (asyncpg's policy; psycopg's is the
fifth) and kept for the connection's life, up to PREPARED_MAX statements; new ones beyond run
unprepared. Nothing is prepared on a connection whose `prepare_threshold` is None (through a
pooler in transaction mode, where the next transaction may run in another server session).
"""

import functools
import re
import weakref

from psycopg import errors
from psycopg.adapt import PyFormat, Transformer
from psycopg.generators import execute as send_and_fetch
from psycopg.pq import ExecStatus

PREPARED_MAX = 200
PLACEHOLDER = re.compile(r"%\((\w+)\)s")  # psycopg's named placeholder, %(name)s
PLACEHOLDER_OR_PERCENT = re.compile(PLACEHOLDER.pattern + "|%%")


class _Session:
    """What the executor keeps per connection: its Transformer and its prepared statements,
    (server text, parameter types) -> (statement name, column names once known)."""

    __slots__ = ("transformer", "prepared")

    def __init__(self, conn):
        self.transformer = Transformer(conn)
        self.prepared = {}


_sessions = weakref.WeakKeyDictionary()


def numbered(text):
    """psycopg's `%(name)s` query as the server takes it, with `$1`, `$2`, … in order of first
    use and `%%` as `%`; and the parameter names in that order."""
    names = []

    def number(match):
        if match[1] is None:
            return "%"
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return PLACEHOLDER_OR_PERCENT.sub(number, text), tuple(names)


@functools.lru_cache(maxsize=1024)
def _server_query(text):
    """numbered(text), encoded as libpq takes it: once per query text, not per run."""
    query, names = numbered(text)
    return query.encode(), names


async def run(conn, text, params, prepare=True):
    """Runs `text` with `params` (by name) on `conn` (in autocommit: outside a transaction()
    block the statement commits by itself): its rows as dicts, and the number of rows it
    returned or touched (None for a statement that reports none)."""
    if not conn.autocommit:
        raise ValueError("the driver runs statements on connections in autocommit only")
    query, names = _server_query(text)
    session = _sessions.get(conn) or _sessions.setdefault(conn, _Session(conn))
    tx = session.transformer
    values = tx.dump_sequence([params[name] for name in names], [PyFormat.AUTO] * len(names))
    key = (query, tx.types)
    formats = tx.formats
    async with conn.lock:
        statement = None
        if prepare and conn.prepare_threshold is not None:
            statement = await _prepared(conn, session, key)
        if statement is None:
            conn.pgconn.send_query_params(query, values, param_types=key[1], param_formats=formats)
        else:
            conn.pgconn.send_query_prepared(statement[0], values, param_formats=formats)
        result = await _result(conn)
    if statement is not None and statement[1] is not None:
        columns = statement[1]
    else:
        columns = [result.fname(i).decode() for i in range(result.nfields)]
        if statement is not None:
            session.prepared[key] = (statement[0], columns)
    tx.set_pgresult(result)
    rows = tx.load_rows(0, result.ntuples, lambda values: dict(zip(columns, values, strict=True)))
    return rows, result.command_tuples


async def _prepared(conn, session, key):
    """The (name, column names) of the statement prepared for `key` on `conn`, prepared now if
    it is new; None if it is new and PREPARED_MAX statements are."""
    statement = session.prepared.get(key)
    if statement is None and len(session.prepared) < PREPARED_MAX:
        name = b"app_%d" % len(session.prepared)
        conn.pgconn.send_prepare(name, key[0], param_types=key[1])
        await _result(conn)
        statement = session.prepared[key] = (name, None)
    return statement


async def _result(conn):
    """The result of the one statement sent on `conn`; psycopg's exception for its error."""
    results = await conn.wait(send_and_fetch(conn.pgconn))
    for result in results:
        if result.status == ExecStatus.FATAL_ERROR:
            raise errors.error_from_result(result, encoding=conn.info.encoding)
    return results[-1]
