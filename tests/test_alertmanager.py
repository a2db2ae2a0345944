"""A real Prometheus Alertmanager (the Debian package) notifies the real server: its webhook
receiver, authenticated with a responder's token, opens an incident for a firing alert and
resolves it when the alert ends."""

import contextlib
import datetime
import os
import shutil
import subprocess
import urllib.request

import pytest

from tests.fix_server import call, free_port, gunicorn, wait_until

ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
CONFIG = """\
route:
  receiver: incidents
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: incidents
    webhook_configs:
      - url: {url}
        send_resolved: true
        http_config:
          authorization:
            credentials: {token}
"""


@pytest.fixture(scope="module")
def alertmanager_binary():
    if not os.access(ALERTMANAGER, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail("prometheus-alertmanager is missing in CI")
        pytest.skip("prometheus-alertmanager is missing: sudo apt-get install prometheus-alertmanager")
    return ALERTMANAGER


@contextlib.contextmanager
def alertmanager(binary, directory, webhook_url, token):
    """Alertmanager on a free loopback port (no clustering), notifying `webhook_url`; yields its
    base URL."""
    config = directory / "alertmanager.yml"
    config.write_text(CONFIG.format(url=webhook_url, token=token))
    port = free_port()
    with open(directory / "alertmanager.log", "w") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(base), 20, "alertmanager did not start")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def _ready(base):
    try:
        with urllib.request.urlopen(base + "/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def rfc3339(moment):
    return moment.isoformat().replace("+00:00", "Z")


def test_a_real_alertmanager_opens_and_resolves_an_incident(
    alertmanager_binary, database_url, db_conn, make_user, tmp_path
):
    responder = make_user("responder")
    now = datetime.datetime.now(datetime.UTC)
    alert = {
        "labels": {"alertname": "DiskAlmostFull", "severity": "critical", "instance": "db-1:9100"},
        "annotations": {"summary": "Disk almost full on db-1", "description": "2% left on /var"},
        "startsAt": rfc3339(now - datetime.timedelta(minutes=1)),
        "generatorURL": "http://prometheus.example.com/graph",
    }
    with gunicorn(database_url, tmp_path / "gunicorn.log") as (base, _):
        url = base + "/alerts/alertmanager"
        with alertmanager(alertmanager_binary, tmp_path, url, responder["token"]) as manager:
            sent = call("POST", manager + "/api/v2/alerts", [alert])
            assert sent.status == 200, sent.body
            wait_for_incident(db_conn, "open", tmp_path)
            ended = {**alert, "endsAt": rfc3339(now - datetime.timedelta(seconds=1))}
            assert call("POST", manager + "/api/v2/alerts", [ended]).status == 200
            wait_for_incident(db_conn, "resolved", tmp_path)

    row = db_conn.execute(
        "SELECT title, severity, source, dedup_key, reporter_id, description FROM incidents"
    ).fetchone()
    assert (row["title"], row["severity"], row["source"]) == (
        "Disk almost full on db-1",
        "critical",
        "alertmanager",
    )
    assert row["dedup_key"] == '{}:{alertname="DiskAlmostFull"}' and row["reporter_id"] == responder["id"]
    assert "instance=db-1:9100" in row["description"]
    actions = db_conn.execute("SELECT action, actor_id FROM incident_history ORDER BY id").fetchall()
    assert actions == [
        {"action": "created", "actor_id": responder["id"]},
        {"action": "resolved", "actor_id": responder["id"]},
    ]
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()


def incident_status(db_conn):
    rows = db_conn.execute("SELECT status FROM incidents").fetchall()
    assert len(rows) <= 1
    return rows[0]["status"] if rows else None


def wait_for_incident(db_conn, status, directory):
    try:
        wait_until(lambda: incident_status(db_conn) == status, 30, f"no {status} incident")
    except AssertionError as ex:
        raise AssertionError(
            f"{ex}; alertmanager's log:\n{(directory / 'alertmanager.log').read_text()[-3000:]}"
        ) from None
