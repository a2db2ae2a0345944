import os
import subprocess
import sys

import psycopg

from api.cli import migrate
from api.db import connect
from tests.fix_db import scratch_database, tables_of
from tests.fix_server import ROOT


def tables_at(url):
    with connect(url) as conn:
        return tables_of(conn)


def test_apply_rollback_all_and_apply_again(server_url, app_tables):
    assert "incidents" in app_tables
    with scratch_database(server_url) as url:
        migrate.apply(url)
        assert tables_at(url) == app_tables
        migrate.rollback(url, count=None)
        assert tables_at(url) == []
        with connect(url) as conn:
            leftovers = conn.execute(
                "SELECT typname FROM pg_type WHERE typname IN ('user_role', 'incident_status', 'incident_severity')"
                " UNION ALL SELECT viewname FROM pg_views WHERE schemaname = 'public'"
            ).fetchall()
        assert leftovers == []
        migrate.apply(url)
        assert tables_at(url) == app_tables


def applied_migrations(url):
    with connect(url) as conn:
        return [
            row["migration_id"]
            for row in conn.execute(
                "SELECT migration_id FROM _yoyo_migration ORDER BY applied_at_utc, migration_id"
            ).fetchall()
        ]


def test_rollback_one_undoes_only_the_last_migration(server_url):
    with scratch_database(server_url) as url:
        migrate.apply(url)
        everything = applied_migrations(url)
        migrate.rollback(url)
        assert applied_migrations(url) == everything[:-1]
        migrate.apply(url)
        assert applied_migrations(url) == everything[:-1] + everything[-1:]


def test_migrate_saves_the_session_defaults_and_is_not_cut_by_them(server_url):
    """`python -m api migrate` makes the app's settings the role's defaults in its database (for
    a pooler); the migrations and the command line's own sessions run without that timeout."""
    with scratch_database(server_url) as url:
        env = {**os.environ, "DATABASE_URL": url, "STATEMENT_TIMEOUT_MS": "1"}
        for _ in range(2):  # the second run starts with the 1 ms default saved by the first
            result = subprocess.run(
                [sys.executable, "-m", "api", "migrate"], cwd=ROOT, env=env, capture_output=True, text=True
            )
            assert result.returncode == 0, result.stderr
        migrate.rollback(url, count=None)
        with psycopg.connect(url) as conn:
            assert conn.execute(
                "SELECT current_setting('statement_timeout'), current_setting('TimeZone')"
            ).fetchone() == ("1ms", "UTC")
        with connect(url) as conn:
            assert (
                conn.execute("SELECT pg_sleep(0.01), current_setting('statement_timeout') AS t").fetchone()[
                    "t"
                ]
                == "0"
            )


def long_thread(conn):
    """An incident with 8 comments of 9,000 characters, the last one's words its own."""
    user = conn.execute(
        "INSERT INTO users (username, email) VALUES ('threader', 't@example.com') RETURNING id"
    ).fetchone()["id"]
    incident = conn.execute(
        "INSERT INTO incidents (title, reporter_id) VALUES ('Long thread', %s) RETURNING id", [user]
    ).fetchone()["id"]
    for n in range(8):
        content = (("padding " * 1125) if n < 7 else ("zookeeper " * 900))[:9000]
        conn.execute(
            "INSERT INTO comments (incident_id, author_id, content) VALUES (%s, %s, %s)",
            [incident, user, content],
        )
    return incident


def search_state(conn, incident):
    return conn.execute(
        "SELECT i.comments_chars, i.search_vector @@ 'zookeep' AS in_vector,"
        " i.search_vector @@ 'pad' AS padding_in_vector,"
        " (SELECT count(*) FROM search_overflow o WHERE o.incident_id = i.id"
        "  AND o.search_vector @@ 'zookeep & long') AS overflow"
        " FROM incidents i WHERE i.id = %s",
        [incident],
    ).fetchone()


def test_the_search_overflow_migration_splits_long_threads_and_rolls_back(server_url):
    """Migration 28 keeps an incident's vector within 16 KiB of comment text, the rest in overflow
    documents; its rollback puts every comment back into the incident's vector."""
    with scratch_database(server_url) as url:
        migrate.apply(url)
        applied = applied_migrations(url)
        through_28 = len(applied) - applied.index("20261202_28_search_overflow")  # it and those after it
        migrate.rollback(url, through_28)
        with connect(url) as conn:
            incident = long_thread(conn)
            assert conn.execute(
                "SELECT search_vector @@ 'zookeep' AS found FROM incidents WHERE id = %s", [incident]
            ).fetchone()["found"]
        migrate.apply(url)
        with connect(url) as conn:
            assert search_state(conn, incident) == {
                "comments_chars": 9000,
                "in_vector": False,
                "padding_in_vector": True,
                "overflow": 1,
            }
        migrate.rollback(url, through_28)
        with connect(url) as conn:
            assert conn.execute(
                "SELECT search_vector @@ 'zookeep & pad' AS found FROM incidents WHERE id = %s", [incident]
            ).fetchone()["found"]
