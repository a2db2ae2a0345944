"""The real server: gunicorn with gunicorn.conf.py, a pool per worker, one log line per request."""

import os
import signal
import socket
import subprocess
import sys

from tests.fix_server import ROOT, call, gunicorn


def test_gunicorn_serves_health_and_logs_one_line_per_request(database_url, tmp_path):
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(database_url, log_path) as (base, process):
        health, ready = call("GET", base + "/health"), call("GET", base + "/ready")
        assert (health.status, health.body) == (200, {"status": "ok"})
        assert (ready.status, ready.body) == (200, {"status": "ok", "database": "ok"})
        anonymous = call("GET", base + "/incidents")
        assert anonymous.status == 401 and anonymous.body["status"] == 401
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    log = log_path.read_text()
    assert "GET /health 200" in log and "GET /ready 200" in log
    assert "GET /incidents 401" in log
    assert "Traceback" not in log


def test_without_database_url_the_server_stops_and_says_so():
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    server = [
        os.path.join(os.path.dirname(sys.executable), "gunicorn"),
        "-c",
        "gunicorn.conf.py",
        "api.asgi:app",
    ]
    for command in (server, [sys.executable, "-c", "import api.asgi"]):
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0
        assert "DATABASE_URL is not set" in done.stderr


def test_the_served_app_loads_no_command_line_tooling():
    script = "import sys, api.asgi; print(sorted(m for m in sys.modules if m.startswith('api.cli') or m in ('pandas', 'yoyo')))"
    env = {**os.environ, "DATABASE_URL": "postgresql:///never-connected"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


def test_a_request_the_http_server_cannot_parse_is_the_documented_plain_400(database_url, tmp_path):
    with gunicorn(database_url, tmp_path / "gunicorn.log") as (base, process):
        document = call("GET", base + "/openapi.json").body
        answers = [
            raw_exchange(base, b"GET /incidents/search?query=" + b"a" * 70_000 + b" HTTP/1.1"),
            raw_exchange(base, b"NOT HTTP"),
        ]
    documented = document["paths"]["/incidents/search"]["get"]["responses"]["400"]["content"]["text/plain"]
    for status_line, body in answers:
        assert status_line == "HTTP/1.1 400 Bad Request"
        assert body == documented["schema"]["const"]


def raw_exchange(base, request_line):
    """The status line and body the server answers to `request_line` (sent as is)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = reply.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body.decode()
