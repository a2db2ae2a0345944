"""Backups that restore: `python -m api backup` of a database filled through the API, restored
by `python -m api restore` into a fresh database, gives every table back row for row; a
database that is not empty is refused."""

import os
import re
import subprocess
import sys

from psycopg import sql

from api.db import connect
from tests.fix_db import scratch_database
from tests.fix_server import ROOT

FILLED = (
    "users", "api_tokens", "incidents", "categories", "incident_categories", "comments",
    "incident_history", "follows", "notifications", "events", "idempotency_keys", "login_failures",
)  # fmt: skip


def run_cli(database_url, *args):
    return subprocess.run(
        [sys.executable, "-m", "api", *map(str, args)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def fill(client, admin, make_user, make_incident, make_category):
    reporter = make_user("reporter")
    followed = client.simulate_post(f"/users/{reporter['id']}/follow", headers=admin["headers"])
    incident = make_incident(reporter, severity="high", category_ids=[make_category("network")["id"]])
    path = f"/incidents/{incident['id']}"
    replies = [
        followed,
        client.simulate_post(
            path + "/comments", json={"content": "seen from eu-1"}, headers=admin["headers"]
        ),
        client.simulate_patch(path, json={"status": "in_progress"}, headers=admin["headers"]),
        client.simulate_post(
            "/incidents", json={"title": "Retried"}, headers={**admin["headers"], "Idempotency-Key": "k"}
        ),
        client.simulate_post("/auth/tokens", json={"username": reporter["username"], "password": "wrong"}),
    ]
    assert [r.status_code for r in replies] == [204, 201, 200, 201, 401]


def contents(url):
    """Every table's rows (as sorted JSON texts) and every sequence's position."""
    with connect(url) as conn:
        tables = conn.execute(
            "SELECT table_schema AS s, table_name AS t FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        rows = {
            (t["s"], t["t"]): sorted(
                r["row"]
                for r in conn.execute(
                    sql.SQL("SELECT to_jsonb(x)::text AS row FROM {}.{} x").format(
                        sql.Identifier(t["s"]), sql.Identifier(t["t"])
                    )
                )
            )
            for t in tables
        }
        sequences = conn.execute("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1").fetchall()
    return rows, sequences


def test_a_backup_restores_every_row_into_an_empty_database(
    server_url, database_url, client, admin, make_user, make_incident, make_category, tmp_path
):
    fill(client, admin, make_user, make_incident, make_category)
    written = run_cli(database_url, "backup", "--dir", tmp_path / "backups")
    assert written.returncode == 0, written.stderr
    (dump,) = (tmp_path / "backups").iterdir()
    assert re.fullmatch(r"incidents_test_\w+-\d{8}T\d{6}Z\.dump", dump.name)
    with scratch_database(server_url) as fresh:
        restored = run_cli(fresh, "restore", dump)
        assert restored.returncode == 0, restored.stderr
        rows, sequences = contents(fresh)
        assert (rows, sequences) == contents(database_url)
        assert [t for t in FILLED if not rows[("public", t)]] == []

        again = run_cli(fresh, "restore", dump)
        assert again.returncode != 0 and "is not empty" in again.stderr
        assert contents(fresh)[0] == rows


def test_restore_refuses_a_missing_file(database_url, tmp_path):
    result = run_cli(database_url, "restore", tmp_path / "nothing.dump")
    assert result.returncode != 0 and "no such file" in result.stderr
