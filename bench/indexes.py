"""The index migration's indexes, dropped and created by the bench (yoyo still records the
migration as applied; the bench restores every index before it ends)."""
import pathlib
import time

import sqlparse

MIGRATION = pathlib.Path(__file__).resolve().parent.parent / "migrations" / "20261124_06_indexes.sql"


def statements(path):
    return [s.rstrip(";") for s in sqlparse.split(sqlparse.format(path.read_text(), strip_comments=True)) if s.strip()]


def create(conn):
    """Creates every missing index; returns {statement: seconds}."""
    timings = {}
    for statement in statements(MIGRATION):
        started = time.perf_counter()
        conn.execute(statement.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1))
        timings[statement] = time.perf_counter() - started
    conn.execute("ANALYZE")
    return timings


def drop(conn):
    for statement in statements(MIGRATION.with_suffix(".rollback.sql")):
        conn.execute(statement.replace("DROP INDEX ", "DROP INDEX IF EXISTS ", 1))
    conn.execute("ANALYZE")
