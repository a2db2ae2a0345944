from api import migrate
from api.db import connect
from tests.fix_db import APP_TABLES, scratch_database


def app_tables(url):
    with connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {row["tablename"] for row in rows} & set(APP_TABLES)


def test_apply_rollback_all_and_apply_again(server_url):
    with scratch_database(server_url) as url:
        migrate.apply(url)
        assert app_tables(url) == set(APP_TABLES)
        migrate.rollback(url, count=None)
        assert app_tables(url) == set()
        with connect(url) as conn:
            leftovers = conn.execute(
                "SELECT typname FROM pg_type WHERE typname IN ('user_role', 'incident_status', 'incident_severity')"
                " UNION ALL SELECT viewname FROM pg_views WHERE schemaname = 'public'").fetchall()
        assert leftovers == []
        migrate.apply(url)
        assert app_tables(url) == set(APP_TABLES)


def incident_columns(url):
    with connect(url) as conn:
        rows = conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'incidents'::regclass"
                            " AND attnum > 0 AND NOT attisdropped").fetchall()
    return {row["attname"] for row in rows}


def test_rollback_one_undoes_only_the_last_migration(server_url):
    with scratch_database(server_url) as url:
        migrate.apply(url)
        migrate.rollback(url)
        assert app_tables(url) == set(APP_TABLES)
        assert "search_vector" not in incident_columns(url)
        migrate.apply(url)
        assert "search_vector" in incident_columns(url)
