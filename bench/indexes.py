"""The secondary indexes the bench weighs: those of the index migration and of the later ones
that add or replace indexes (FILES), dropped and created by the bench (yoyo still records the migrations as applied;
the bench restores every index before it ends)."""

import pathlib
import re
import time

import sqlparse

MIGRATIONS = pathlib.Path(__file__).resolve().parent.parent / "migrations"
FILES = [
    "20261124_06_indexes.sql",
    "20261125_09_stats.sql",
    "20261125_11_category_lists.sql",
    "20261125_12_active_search.sql",
    "20261125_13_phrase_search.sql",
    "20261202_15_active_search_pending_list.sql",
    "20261202_19_retention.sql",
    "20261202_24_stats_rollups.sql",
    "20261202_28_search_overflow.sql",
    "20261202_29_category_stats.sql",
    "20261202_30_triage_list.sql",
]
CREATE = re.compile(r"CREATE INDEX (\w+)\s")
ALTER = re.compile(r"ALTER INDEX (\w+)\s")
DROP = re.compile(r"DROP INDEX (?:IF EXISTS )?(\w+)")


def statements():
    """Every `CREATE INDEX` statement of those migrations, each followed by the `ALTER INDEX`
    statements that set up its index, but for indexes a later one drops."""
    found = {}
    for name in FILES:
        text = sqlparse.format((MIGRATIONS / name).read_text(), strip_comments=True)
        for statement in (s.strip().rstrip(";") for s in sqlparse.split(text)):
            if CREATE.match(statement):
                found[CREATE.match(statement)[1]] = statement
            elif ALTER.match(statement):
                found[ALTER.match(statement)[1]] += ";\n" + statement
            elif DROP.match(statement):
                del found[DROP.match(statement)[1]]
    return list(found.values())


def create(conn):
    """Creates every missing index; returns {statement: seconds}."""
    timings = {}
    for statement in statements():
        started = time.perf_counter()
        conn.execute(statement.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1))
        timings[statement] = time.perf_counter() - started
    conn.execute("ANALYZE")
    return timings


def drop(conn):
    for statement in statements():
        conn.execute(f"DROP INDEX IF EXISTS {CREATE.match(statement)[1]}")
    conn.execute("ANALYZE")
