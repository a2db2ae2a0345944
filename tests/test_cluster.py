"""`python -m api cluster`: the local topology starts in the background, serves the same data
through both gunicorns, streams to its replica, starts nothing twice, and stops every process."""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import psycopg
import pytest

from tests.fix_pgbouncer import require_pgbouncer
from tests.fix_server import ROOT, call, free_port, wait_until

PARTS = ("app-a", "app-b", "deliver", "pgbouncer", "primary", "replica")


@pytest.fixture(scope="module")
def topology():
    require_pgbouncer()
    folder = pathlib.Path(tempfile.mkdtemp(prefix="incidents-cluster-test-"))
    folder.chmod(0o755)  # as root, PostgreSQL and PgBouncer run as postgres, who must enter it
    app_a, app_b, pgbouncer, primary, replica = (free_port() for _ in range(5))
    env = {
        **os.environ,
        "CLUSTER_DIR": str(folder / "cluster"),
        "CLUSTER_APP_PORTS": f"{app_a},{app_b}",
        "CLUSTER_PGBOUNCER_PORT": str(pgbouncer),
        "CLUSTER_PRIMARY_PORT": str(primary),
        "CLUSTER_REPLICA_PORT": str(replica),
        "WEB_CONCURRENCY": "1",
    }
    started = cluster("start", env)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield {
            "env": env,
            "base": folder / "cluster",
            "apps": (f"http://127.0.0.1:{app_a}", f"http://127.0.0.1:{app_b}"),
            "token": re.search(r"inc_[\w-]{43}", started.stdout).group(),
            "primary": db_url(folder / "cluster", primary),
            "replica": db_url(folder / "cluster", replica),
            "pidfiles": pidfiles(folder / "cluster", app_a, app_b),
        }
    finally:
        cluster("stop", env)
        shutil.rmtree(folder, ignore_errors=True)


def cluster(action, env):
    return subprocess.run(
        [sys.executable, "-m", "api", "cluster", action], cwd=ROOT, env=env, capture_output=True, text=True
    )


def db_url(base, port):
    return f"postgresql://postgres:{(base / 'password').read_text()}@127.0.0.1:{port}/incidents"


def pidfiles(base, app_a, app_b):
    names = (f"app-{app_a}.pid", f"app-{app_b}.pid", "deliver.pid", "pgbouncer/pgbouncer.pid")
    paths = [base / name for name in names] + [
        base / node / "postmaster.pid" for node in ("primary", "replica")
    ]
    return dict(zip(PARTS, paths, strict=True))


def pids_of(topology):
    return {part: int(path.read_text().split()[0]) for part, path in topology["pidfiles"].items()}


def test_both_apps_answer_ready(topology):
    for app in topology["apps"]:
        assert call("GET", app + "/ready").status == 200


def test_an_incident_written_through_one_app_is_read_through_the_other_and_on_the_replica(topology):
    app_a, app_b = topology["apps"]
    headers = {"Authorization": f"Bearer {topology['token']}"}
    created = call("POST", app_a + "/incidents", {"title": "Replica lag on db-2"}, headers)
    assert created.status == 201
    read = call("GET", app_b + created.headers["location"], headers=headers)
    assert read.status == 200 and read.body["title"] == "Replica lag on db-2"
    with psycopg.connect(topology["primary"]) as primary:
        assert primary.execute("SELECT state FROM pg_stat_replication").fetchall() == [("streaming",)]
    with psycopg.connect(topology["replica"], autocommit=True) as replica:
        assert replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        find = "SELECT title FROM incidents WHERE id = %s"
        wait_until(
            lambda: replica.execute(find, [created.body["id"]]).fetchone() == ("Replica lag on db-2",),
            5,
            "the incident did not reach the replica within 5 s",
        )


def test_a_second_start_starts_nothing(topology):
    before = pids_of(topology)
    again = cluster("start", topology["env"])
    assert again.returncode == 0 and "already running" in again.stdout
    assert pids_of(topology) == before


def test_stop_leaves_no_process_behind_and_may_run_twice(topology):
    processes = descendants(set(pids_of(topology).values()))
    assert len(processes) > len(PARTS)  # gunicorn's workers and PostgreSQL's own processes too
    stopped = cluster("stop", topology["env"])
    assert stopped.returncode == 0, stopped.stderr
    assert [pid for pid in processes if running(pid)] == []
    assert not any(path.exists() for path in topology["pidfiles"].values())
    again = cluster("stop", topology["env"])
    assert again.returncode == 0 and "nothing" in again.stdout


def descendants(pids):
    parents = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found = set(pids)
    while more := {pid for pid, parent in parents.items() if parent in found} - found:
        found |= more
    return found


def running(pid):
    """A zombie has ended: whether it was reaped is up to its parent (here init)."""
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
