from api.cli import migrate
from api.db import connect
from tests.fix_db import scratch_database, tables_of


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
