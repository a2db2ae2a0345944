"""What a user sees in a real browser: the generated report and the API's /docs page, opened
by headless Chromium, which prints the DOM once the page's scripts have run."""

import os
import re
import shutil
import subprocess
import urllib.request

import pytest

from api.cli.report import write_report
from api.db import connect
from tests.fix_server import gunicorn

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium():
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI")
        pytest.skip("chromium is missing: sudo apt-get install chromium")
    return CHROMIUM


def browse(chromium, url, profile):
    """The DOM of `url` after loading, with up to 10 s (virtual) for its scripts."""
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert not [line for line in console if "Uncaught" in line or "Failed to load" in line], console
    return result.stdout


def test_report_shows_every_chart(chromium, database_url, make_user, make_incident, tmp_path):
    make_incident(make_user(), severity="high")
    with connect(database_url) as conn:
        write_report(conn, tmp_path / "report")
    dom = browse(chromium, (tmp_path / "report" / "index.html").as_uri(), tmp_path / "profile")
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert 'data-images-total="5"' in body and 'data-images-loaded="5"' in body, body
    assert dom.count("<img ") == 5


def test_docs_page_renders_every_operation(chromium, database_url, tmp_path):
    with gunicorn(database_url, tmp_path / "gunicorn.log") as (base, _):
        dom = browse(chromium, base + "/docs", tmp_path / "profile")
        check_docs_page(base, dom)


def check_docs_page(base, dom):
    assert len(re.findall(r'class="opblock opblock-', dom)) >= 20
    assert "/incidents/{incident_id}" in dom
    for error in ("Failed to load", "Fetch error", "errors-wrapper"):
        assert error not in dom
    for path in re.findall(r'<(?:img|script|link)[^>]* (?:src|href)="(/[^"]*)"', dom):
        with urllib.request.urlopen(base + path, timeout=5) as response:
            assert response.status == 200 and response.read(), path
