"""Backups that restore: `python -m api backup` of a database filled through the API, restored
by `python -m api restore` into a fresh database, gives every table back row for row, and the
service on it answers the same incidents; a database that is not empty is refused. And point-in-time recovery as docs/operations.md
describes it, on a cluster of its own."""

import os
import re
import shutil
import subprocess
import sys
import tarfile
import time

from psycopg import sql

from api.cli import pgcluster
from api.config import Config
from api.db import connect
from tests.fix_app import client_of
from tests.fix_db import scratch_database
from tests.fix_server import ROOT, wait_until

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
        served = answers(database_url, admin)
        assert [status for status, _, _ in served] == [200, 200]
        assert answers(fresh, admin) == served

        again = run_cli(fresh, "restore", dump)
        assert again.returncode != 0 and "is not empty" in again.stderr
        assert contents(fresh)[0] == rows


def answers(database_url, user):
    """What `GET /incidents/{id}` answers for every incident: status, ETag and body."""
    with connect(database_url) as conn:
        ids = [r["id"] for r in conn.execute("SELECT id FROM incidents ORDER BY id")]
    with client_of(Config(database_url=database_url, pool_min_size=1, pool_max_size=1)) as client:
        replies = [client.simulate_get(f"/incidents/{i}", headers=user["headers"]) for i in ids]
    return [(r.status_code, r.headers["etag"], r.json) for r in replies]


def test_restore_refuses_a_missing_file(database_url, tmp_path):
    result = run_cli(database_url, "restore", tmp_path / "nothing.dump")
    assert result.returncode != 0 and "no such file" in result.stderr


def archiving(archive):
    """The WAL archiving settings of docs/operations.md, archiving into `archive`."""
    command = f"test ! -f {archive}/%f && cp %p {archive}/%f"
    return ("-c wal_level=replica", "-c archive_mode=on", f"-c archive_command='{command}'")


def test_point_in_time_recovery_as_documented():
    """WAL archiving and a base backup as docs/operations.md sets them up, then a recovery to a
    moment between two writes: the first is there, the second is not."""
    with pgcluster.throwaway_cluster() as cluster:
        base = cluster.datadir.parent
        archive, backup = base / "wal_archive", base / "base"
        archive.mkdir()
        if os.geteuid() == 0:
            shutil.chown(archive, "postgres", "postgres")
        cluster.stop()
        cluster.start(*pgcluster.FAST, *archiving(archive))
        cluster.run("pg_basebackup", "-h", cluster.sockdir, "-U", "postgres", "-D", backup,
                    "--format=tar", "--gzip", "--wal-method=stream", "--checkpoint=fast")  # fmt: skip
        target = write_around_a_moment(cluster.url())
        cluster.stop()
        recovered = pgcluster.Cluster(base / "recovered", cluster.sockdir)
        unpack(backup, recovered.datadir)
        with open(recovered.datadir / "postgresql.auto.conf", "a") as conf:
            conf.write(
                f"restore_command = 'cp {archive}/%f %p'\n"
                f"recovery_target_time = '{target}'\nrecovery_target_action = 'promote'\n"
            )
        (recovered.datadir / "recovery.signal").touch()
        recovered.start(*pgcluster.FAST)
        try:
            with connect(recovered.url()) as conn:
                wait_until(lambda: not in_recovery(conn), 30, "recovery did not end")
                assert [r["note"] for r in conn.execute("SELECT note FROM pitr")] == ["before"]
        finally:
            recovered.stop()


def write_around_a_moment(url):
    """Writes 'before', takes the moment, writes 'after', and has the WAL archived."""
    with connect(url) as conn:
        conn.execute("CREATE TABLE pitr (note text)")
        conn.execute("INSERT INTO pitr VALUES ('before')")
        time.sleep(0.5)
        target = conn.execute("SELECT now()::text AS t").fetchone()["t"]
        time.sleep(0.5)
        conn.execute("INSERT INTO pitr VALUES ('after')")
        segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal()) AS w").fetchone()["w"]
        wait_until(lambda: archived_through(conn, segment), 30, "the WAL was not archived")
    return target


def archived_through(conn, segment):
    row = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
    return (row["last_archived_wal"] or "") >= segment


def in_recovery(conn):
    return conn.execute("SELECT pg_is_in_recovery() AS r").fetchone()["r"]


def unpack(backup, datadir):
    datadir.mkdir(mode=0o700)
    with tarfile.open(backup / "base.tar.gz") as tar:
        tar.extractall(datadir, filter="fully_trusted")
    with tarfile.open(backup / "pg_wal.tar.gz") as tar:
        tar.extractall(datadir / "pg_wal", filter="fully_trusted")
    if os.geteuid() == 0:
        for path in [datadir, *datadir.rglob("*")]:
            shutil.chown(path, "postgres", "postgres")
