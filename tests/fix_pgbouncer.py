"""A real PgBouncer in transaction mode on a free loopback port, in front of a test server.

PgBouncer refuses to run as root, so as root it runs as the `postgres` user, which then owns
its folder. It lets anyone in (`auth_type = trust`) on loopback, as the test server does.

With `--through-pgbouncer`, the session's app (the `config` fixture) reaches the test database
through one, as DATABASE_POOLER=transaction; the tests' own connections (`db_conn`) stay direct."""

import contextlib
import dataclasses
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

import pytest

from api.db import save_session_defaults
from tests.fix_server import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
# NOTE: the settings docs/operations.md recommends, so that an outage behind PgBouncer is a quick
# error for the app rather than a query queued for 120 s (query_wait_timeout's default).
FAIL_FAST = {
    "query_wait_timeout": "2",
    "server_connect_timeout": "1",
    "server_login_retry": "1",
}


def pytest_addoption(parser):
    parser.addoption(
        "--through-pgbouncer",
        action="store_true",
        help="the app's connections go through a PgBouncer in transaction mode (DATABASE_POOLER=transaction)",
    )


def pytest_configure(config):
    if config.getoption("through_pgbouncer") and not os.access(PGBOUNCER, os.X_OK):
        raise pytest.UsageError("--through-pgbouncer needs pgbouncer: sudo apt-get install pgbouncer")


@pytest.fixture(scope="session")
def session_pgbouncer(request, server_url):
    """With --through-pgbouncer, a PgBouncer in front of the session's server; else None."""
    if not request.config.getoption("through_pgbouncer"):
        yield None
        return
    with pgbouncer(server_url) as bouncer:
        yield bouncer


def through(bouncer, config, conn):
    """`config` with its database (`conn`'s) reached through `bouncer` in transaction mode, after
    saving its session settings as the role's defaults there, as `python -m api migrate` would."""
    config = dataclasses.replace(config, database_pooler="transaction")
    save_session_defaults(conn, config)
    return dataclasses.replace(config, database_url=bouncer(conn.info.dbname))


def require_pgbouncer():
    """Skips the test without PgBouncer; fails it instead when the CI variable is set."""
    if not os.access(PGBOUNCER, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail("pgbouncer is missing in CI")
        pytest.skip("pgbouncer is missing: sudo apt-get install pgbouncer")


@contextlib.contextmanager
def pgbouncer(server_url, **settings):
    """PgBouncer in front of `server_url`'s server, with `settings` over FAIL_FAST; yields a
    Bouncer: called with a database's name, it gives that database's pooled URL."""
    folder = _folder()
    port = free_port()
    (folder / "pgbouncer.ini").write_text(_ini(server_url, folder, port, {**FAIL_FAST, **settings}))
    (folder / "userlist.txt").write_text(f'"{_user(server_url)}" ""\n')
    _hand_over(folder)
    bouncer = Bouncer(folder, port, _user(server_url))
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(folder, ignore_errors=True)


class Bouncer:
    def __init__(self, folder, port, user):
        self.folder, self.port, self.user = folder, port, user
        self._process = None

    def __call__(self, dbname):
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def start(self):
        self._process = subprocess.Popen(
            _as_postgres([PGBOUNCER, str(self.folder / "pgbouncer.ini")]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        _wait_for_port(self.port, self._process, self.folder / "pgbouncer.log")

    def stop(self):
        _stop(self._process, self.folder / "pgbouncer.pid")


def _ini(server_url, folder, port, settings):
    parts = urllib.parse.urlsplit(server_url)
    query = urllib.parse.parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "/var/run/postgresql"])[0]
    lines = [
        "[databases]",
        f"* = host={host} port={parts.port or 5432}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {folder / 'userlist.txt'}",
        "pool_mode = transaction",
        f"logfile = {folder / 'pgbouncer.log'}",
        f"pidfile = {folder / 'pgbouncer.pid'}",
        *(f"{name} = {value}" for name, value in settings.items()),
    ]
    return "\n".join(lines) + "\n"


def _user(server_url):
    return urllib.parse.urlsplit(server_url).username or "postgres"


def _folder():
    return pathlib.Path(tempfile.mkdtemp(prefix="incidents-pgbouncer-"))


def _hand_over(folder):
    if os.geteuid() == 0:
        for path in [folder, *folder.iterdir()]:
            shutil.chown(path, "postgres", "postgres")


def _as_postgres(command):
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _wait_for_port(port, process, log):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited:\n{log.read_text() if log.exists() else ''}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("pgbouncer did not listen within 10 s")


def _stop(process, pidfile):
    # NOTE: signalled itself, as runuser does not pass SIGINT (immediate shutdown) on.
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pidfile.read_text()), signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
