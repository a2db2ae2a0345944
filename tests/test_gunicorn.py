"""The real server: gunicorn with gunicorn.conf.py, a pool per worker, one log line per request."""
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

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url, headers=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as ex:
        return ex.code, json.loads(ex.read())


@pytest.fixture
def server(database_url, tmp_path):
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    env = {**os.environ, "DATABASE_URL": database_url, "PORT": str(port), "WEB_CONCURRENCY": "2"}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "-c", "gunicorn.conf.py", "api.wsgi:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            get(base + "/health")
            break
        except OSError:
            time.sleep(0.2)
    yield base, process, log_path
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def test_gunicorn_serves_health_and_logs_one_line_per_request(server):
    base, process, log_path = server
    assert get(base + "/health") == (200, {"status": "ok", "database": "ok"})
    status, body = get(base + "/incidents")
    assert status == 401 and body["status"] == 401
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    log = log_path.read_text()
    assert "GET /health 200" in log
    assert "GET /incidents 401" in log
    assert "Traceback" not in log
