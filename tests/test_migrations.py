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
