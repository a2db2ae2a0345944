"""`python -m api cluster start|stop|status`: a production-like topology on loopback, in the
background, with its data, pid files and logs under CLUSTER_DIR (default `.cluster/`):

    two gunicorns -> PgBouncer (transaction mode) -> primary -> streaming replica
    delivery worker -> primary

Every step is skipped when its part already runs, so `start` twice starts nothing twice, and
`stop` stops what runs, any number of times. As root, PostgreSQL and PgBouncer run as `postgres`.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psycopg
from psycopg import sql

from api.cli import PROJECT_ROOT
from api.cli.pgcluster import DATABASE_NAME, Cluster, ClusterError, as_postgres, own_folder

REPLICATOR = "replicator"  # the role the replica streams as
SLOT = "replica"  # its physical replication slot: the primary keeps the WAL the replica still needs
STARTUP_SECONDS = 30
STOP_SECONDS = 30
# NOTE: as docs/operations.md recommends: an outage behind PgBouncer is a quick error for the app.
PGBOUNCER_SETTINGS = {"query_wait_timeout": 2, "server_connect_timeout": 1, "server_login_retry": 1}


@dataclasses.dataclass(frozen=True)
class Layout:
    base: pathlib.Path
    app_ports: tuple = (8001, 8002)
    pgbouncer_port: int = 6441
    primary_port: int = 5441
    replica_port: int = 5442

    @classmethod
    def from_env(cls, env=os.environ):
        """CLUSTER_DIR and the CLUSTER_*_PORT(S) settings; once started, what the start used."""
        base = pathlib.Path(env.get("CLUSTER_DIR", PROJECT_ROOT / ".cluster")).resolve()
        saved = base / "cluster.json"  # NOTE: the replica's primary_conninfo names the primary's port
        if saved.exists():
            fields = json.loads(saved.read_text())
            return cls(base, tuple(fields.pop("app_ports")), **fields)
        return cls(
            base,
            tuple(int(port) for port in env.get("CLUSTER_APP_PORTS", "8001,8002").split(",")),
            int(env.get("CLUSTER_PGBOUNCER_PORT", cls.pgbouncer_port)),
            int(env.get("CLUSTER_PRIMARY_PORT", cls.primary_port)),
            int(env.get("CLUSTER_REPLICA_PORT", cls.replica_port)),
        )

    def save(self):
        fields = dataclasses.asdict(self)
        del fields["base"]
        (self.base / "cluster.json").write_text(json.dumps(fields) + "\n")

    def node(self, name):
        """The primary or the replica; both keep their socket in one short folder under /tmp
        (socket paths are limited to ~107 bytes), told apart by port."""
        tag = hashlib.sha1(str(self.base).encode()).hexdigest()[:10]
        port = self.primary_port if name == "primary" else self.replica_port
        return Cluster(self.base / name, f"/tmp/incidents-cluster-{tag}", port)

    def url(self, port, dbname=DATABASE_NAME):
        return f"postgresql://postgres:{self.password()}@127.0.0.1:{port}/{dbname}"

    def password(self):
        """The generated password of `postgres` (and of the replication role), kept in CLUSTER_DIR."""
        path = self.base / "password"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24))
        return path.read_text()

    def apps(self):
        return {f"app-{port}": port for port in self.app_ports}

    def pidfile(self, name):
        """Where a part's pid is: PostgreSQL's and PgBouncer's own files, else one of ours."""
        if name in ("primary", "replica"):
            return self.base / name / "postmaster.pid"
        return self.base / ("pgbouncer/pgbouncer.pid" if name == "pgbouncer" else f"{name}.pid")


def start(layout, bootstrap):
    """Starts what does not run yet; `bootstrap(url)` migrates the primary and creates the admin."""
    if all(pid for _, pid in parts(layout)):
        print("The cluster is already running.")
        status(layout)
        return
    layout.base.mkdir(parents=True, exist_ok=True)
    layout.save()
    settings = _server_settings(layout)
    primary, replica = layout.node("primary"), layout.node("replica")
    primary.start(*settings)
    _prepare_primary(primary, layout.password())
    bootstrap(layout.url(layout.primary_port))
    if not (replica.datadir / "PG_VERSION").exists():
        _base_backup(replica, layout)
    replica.start(*settings)
    _start_pgbouncer(layout)
    for name, port in layout.apps().items():
        _spawn(layout, name, [_gunicorn(), "-c", "gunicorn.conf.py", "api.asgi:app"], port)
    _spawn(layout, "deliver", [sys.executable, "-m", "api", "deliver"])
    for name, port in layout.apps().items():
        _wait_until_ready(layout, name, port)
    status(layout)


def _server_settings(layout):
    hba = layout.base / "pg_hba.conf"
    hba.write_text(
        "# Written by python -m api cluster: the socket (in a folder only its owner enters) trusts;\n"
        "# on loopback, a password for the app's role and for the replication role.\n"
        "local all all trust\n"
        "host all postgres 127.0.0.1/32 scram-sha-256\n"
        f"host replication {REPLICATOR} 127.0.0.1/32 scram-sha-256\n"
    )
    return (
        "-c listen_addresses=127.0.0.1",
        f"-c hba_file={hba}",
        "-c wal_level=replica",
        "-c hot_standby=on",
    )


def _prepare_primary(primary, password):
    with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [REPLICATOR]).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} REPLICATION LOGIN").format(sql.Identifier(REPLICATOR)))
        for role in ("postgres", REPLICATOR):
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
            )
        if not conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [SLOT]).fetchone():
            conn.execute("SELECT pg_create_physical_replication_slot(%s)", [SLOT])


def _base_backup(replica, layout):
    """The replica's data, following the primary through the slot."""
    replica.base_backup(
        f"host=127.0.0.1 port={layout.primary_port} user={REPLICATOR} password={layout.password()}",
        "-S",
        SLOT,
    )


def _start_pgbouncer(layout):
    if _running_pid(layout.pidfile("pgbouncer")):
        return
    start_pgbouncer(
        layout,
        {DATABASE_NAME: pooled(layout.primary_port), f"{DATABASE_NAME}_replica": pooled(layout.replica_port)},
    )


def pooled(port, mode="transaction"):
    """A PgBouncer database entry: the app's database on the server at `port`, pooled in `mode`."""
    return f"host=127.0.0.1 port={port} dbname={DATABASE_NAME} pool_mode={mode}"


def start_pgbouncer(layout, databases, settings=PGBOUNCER_SETTINGS):
    """PgBouncer on the layout's port with `databases` ({name: pooled(...)}), as a daemon."""
    folder = layout.base / "pgbouncer"
    own_folder(folder)
    lines = [
        "[databases]",
        *(f"{name} = {entry}" for name, entry in databases.items()),
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {layout.pgbouncer_port}",
        "unix_socket_dir =",
        "auth_type = scram-sha-256",
        f"auth_file = {folder / 'userlist.txt'}",
        "admin_users = postgres",
        f"logfile = {folder / 'pgbouncer.log'}",
        f"pidfile = {layout.pidfile('pgbouncer')}",
        *(f"{name} = {value}" for name, value in settings.items()),
    ]
    (folder / "pgbouncer.ini").write_text("\n".join(lines) + "\n")
    userlist = folder / "userlist.txt"
    userlist.touch(mode=0o600)
    userlist.write_text(f'"postgres" "{layout.password()}"\n')
    if os.geteuid() == 0:
        for path in folder.iterdir():
            shutil.chown(path, "postgres", "postgres")
    command = as_postgres([_pgbouncer(), "-d", str(folder / "pgbouncer.ini")])
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not _listens(layout.pgbouncer_port):
        raise ClusterError(f"pgbouncer did not start:\n{result.stderr}{_tail(folder / 'pgbouncer.log')}")


def _pgbouncer():
    found = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.access(found, os.X_OK):
        raise ClusterError("pgbouncer was not found: sudo apt-get install pgbouncer")
    return found


def _listens(port):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
        time.sleep(0.05)
    return False


def _gunicorn():
    return os.path.join(os.path.dirname(sys.executable), "gunicorn")


def _spawn(layout, name, command, port=None):
    """Starts `command` in a session of its own (no terminal, no signal from the shell that ran
    `start`), its output appended to CLUSTER_DIR/<name>.log; records it in <name>.pid."""
    if _running_pid(layout.pidfile(name)):
        return
    with open(layout.base / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=_app_env(layout, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    layout.pidfile(name).write_text(f"{process.pid} {_stat(process.pid)[1]}\n")


def _app_env(layout, port):
    """The environment of the gunicorns and the worker: the app through PgBouncer, the worker
    (session locks, LISTEN) to the primary itself, replica reads through PgBouncer's replica entry."""
    env = {name: value for name, value in os.environ.items() if name != "PROMETHEUS_MULTIPROC_DIR"}
    return {
        **env,
        "DATABASE_URL": layout.url(layout.pgbouncer_port),
        "DATABASE_POOLER": "transaction",
        "DELIVERY_DATABASE_URL": layout.url(layout.primary_port),
        "DATABASE_REPLICA_URL": layout.url(layout.pgbouncer_port, f"{DATABASE_NAME}_replica"),
        "REPLICA_MAX_LAG": env.get("REPLICA_MAX_LAG", "5"),
        **({"HOST": "127.0.0.1", "PORT": str(port)} if port else {}),
    }


def _wait_until_ready(layout, name, port):
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if not _running_pid(layout.pidfile(name)):
            break
        # NOTE: urlopen raises (an OSError) for a 503; it returns only for the 200.
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2),
        ):
            return
        time.sleep(0.1)
    log = layout.base / f"{name}.log"
    raise ClusterError(f"{name} did not answer GET /ready with 200; the end of {log}:\n{_tail(log)}")


def _tail(path, lines=20):
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def stop(layout):
    """Stops the gunicorns and the worker, then PgBouncer, then the replica and the primary."""
    stopped = _terminate(layout, [*layout.apps(), "deliver"], signal.SIGTERM)
    # NOTE: SIGINT is PgBouncer's safe shutdown; its clients are gone by now.
    stopped += _terminate(layout, ["pgbouncer"], signal.SIGINT)
    for name in ("replica", "primary"):
        node = layout.node(name)
        if node.running():
            node.stop()
            stopped.append(name)
    with contextlib.suppress(OSError):
        layout.node("primary").sockdir.rmdir()
    print(f"stopped {', '.join(stopped)}" if stopped else "nothing of the cluster was running")


def _terminate(layout, names, signum):
    running = {name: pid for name in names if (pid := _running_pid(layout.pidfile(name)))}
    for pid in running.values():
        os.kill(pid, signum)
    deadline = time.monotonic() + STOP_SECONDS
    while (left := [pid for pid in running.values() if _stat(pid)[0] not in (None, "Z")]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    for name in names:
        layout.pidfile(name).unlink(missing_ok=True)
    return list(running)


def _stat(pid):
    """(state, start time in clock ticks since boot) of a process, or (None, None) when gone."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None, None
    return fields[0], fields[19]


def _running_pid(path):
    """The pid in the first line of a pid file while that process runs (a zombie does not count).
    Our own pid files also hold the start time: a pid reused since by another process is not ours."""
    try:
        pid, *started = path.read_text().splitlines()[0].split()
        state, start = _stat(int(pid))
    except (OSError, IndexError, ValueError):
        return None
    return int(pid) if state not in (None, "Z") and started in ([], [start]) else None


def parts(layout):
    """(row of the status table, pid or None) of every part."""
    pgbouncer = layout.base / "pgbouncer"
    rows = [
        (name, f"http://127.0.0.1:{port}", "-", layout.base / f"{name}.log")
        for name, port in layout.apps().items()
    ]
    rows += [
        ("deliver", "-", "-", layout.base / "deliver.log"),
        (
            "pgbouncer",
            f"127.0.0.1:{layout.pgbouncer_port}",
            pgbouncer / "pgbouncer.ini",
            pgbouncer / "pgbouncer.log",
        ),
    ]
    for name in ("primary", "replica"):
        node = layout.node(name)
        rows.append((name, f"127.0.0.1:{node.port}", node.datadir, node.datadir / "server.log"))
    return [(row, _running_pid(layout.pidfile(row[0]))) for row in rows]


def status(layout):
    table = [("part", "listens on", "data / config", "log", "pid")]
    table += [(*map(_short, row), str(pid or "stopped")) for row, pid in parts(layout)]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print(f"password of postgres: {_short(layout.base / 'password')}")


def _short(value):
    """A path below the working directory relative to it; anything else as it is."""
    if isinstance(value, pathlib.Path) and value.is_relative_to(pathlib.Path.cwd()):
        return str(value.relative_to(pathlib.Path.cwd()))
    return str(value)
