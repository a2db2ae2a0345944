"""The real server for fault, load and shutdown tests: gunicorn on a free loopback port, a
plain HTTP client that never raises for a status, and a row lock that keeps a request waiting."""

import asyncio
import contextlib
import dataclasses
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from api.db import connect

ROOT = pathlib.Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict
    body: object
    seconds: float


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(method, url, body=None, headers=None, timeout=15):
    """One request; a Reply whatever the status (headers with lower-case names)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {**({"Content-Type": "application/json"} if data else {}), **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, got = response.status, response.read(), response.headers
    except urllib.error.HTTPError as ex:
        status, raw, got = ex.code, ex.read(), ex.headers
    return Reply(
        status,
        {k.lower(): v for k, v in got.items()},
        json.loads(raw) if raw else None,
        time.monotonic() - started,
    )


@contextlib.contextmanager
def gunicorn(database_url, log_path, **env):
    """gunicorn with gunicorn.conf.py on `database_url`; yields (base URL, process).
    Stopped with SIGTERM on exit if still running."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        **{name: str(value) for name, value in env.items()},
    }
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                os.path.join(os.path.dirname(sys.executable), "gunicorn"),
                "-c",
                "gunicorn.conf.py",
                "api.asgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(base), 20, "gunicorn did not start")
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def _answers(base):
    try:
        return call("GET", base + "/ready", timeout=2).status == 200
    except OSError:
        return False


def wait_until(condition, seconds, message):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


@contextlib.contextmanager
def row_locked(database_url, table, row_id):
    """Holds `FOR UPDATE` on one row until the block ends, so writers of that row wait."""
    with connect(database_url) as conn, conn.transaction():
        conn.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [row_id])  # a constant table
        yield


def lock_waiters(db_conn):
    """How many sessions of this database wait for a lock."""
    return db_conn.execute(
        "SELECT count(*) AS n FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ).fetchone()["n"]


@contextlib.asynccontextmanager
async def only_connection_held(conductor, database_url, db_conn, incident, user):
    """The app's one pooled connection held by a PATCH of `incident` that waits on a row lock,
    until the block ends (the lock is then released); yields the PATCH's task."""
    with row_locked(database_url, "incidents", incident["id"]):
        holder = asyncio.create_task(
            conductor.simulate_patch(
                f"/incidents/{incident['id']}", json={"title": "after"}, headers=user["headers"]
            )
        )
        while lock_waiters(db_conn) != 1:
            await asyncio.sleep(0.02)
        yield holder
