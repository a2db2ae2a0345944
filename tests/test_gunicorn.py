"""The real server: gunicorn with gunicorn.conf.py, a pool per worker, one log line per request."""

import signal

from tests.fix_server import call, gunicorn


def test_gunicorn_serves_health_and_logs_one_line_per_request(database_url, tmp_path):
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(database_url, log_path) as (base, process):
        health = call("GET", base + "/health")
        assert (health.status, health.body) == (200, {"status": "ok", "database": "ok"})
        anonymous = call("GET", base + "/incidents")
        assert anonymous.status == 401 and anonymous.body["status"] == 401
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    log = log_path.read_text()
    assert "GET /health 200" in log
    assert "GET /incidents 401" in log
    assert "Traceback" not in log
