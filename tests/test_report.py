"""`python -m api report`: the charts and index.html a user opens, on seeded and empty data."""

import re
import struct

import pytest

from api.cli.report import write_report
from api.db import connect

CHARTS = ["status.png", "severity.png", "daily.png", "mttr.png", "workload.png"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path.name} is no PNG"
    return struct.unpack(">II", data[16:24])


def table_rows(page, section_id):
    """The rows of a section's table as lists of cell texts."""
    section = re.search(rf'<section id="{section_id}">(.*?)</section>', page, re.DOTALL).group(1)
    return [
        re.findall(r"<td>(.*?)</td>", row)
        for row in re.findall(r"<tr>(.*?)</tr>", section, re.DOTALL)
        if "<td>" in row
    ]


@pytest.fixture
def seeded(client, db_conn, make_user, make_incident):
    """3 open (2 assigned to ana), 1 in progress with ana, 2 high incidents resolved after 3 hours."""
    reporter, ana = make_user(), make_user("responder", username="ana")
    for _ in range(2):
        make_incident(ana, severity="critical", assignee_id=ana["id"])
    make_incident(reporter, severity="low")
    started = make_incident(reporter, severity="medium")
    result = client.simulate_patch(
        f"/incidents/{started['id']}",
        headers=ana["headers"],
        json={"status": "in_progress", "assignee_id": ana["id"]},
    )
    assert result.status_code == 200
    for _ in range(2):
        incident = make_incident(reporter, severity="high")
        result = client.simulate_post(f"/incidents/{incident['id']}/resolve", headers=ana["headers"])
        assert result.status_code == 200
        db_conn.execute(
            "UPDATE incidents SET created_at = created_at - interval '3 hours' WHERE id = %s",
            [incident["id"]],
        )


def render(database_url, tmp_path):
    with connect(database_url) as conn:
        paths = write_report(conn, tmp_path, days=30)
    return (tmp_path / "index.html").read_text(), paths


def test_report_charts_and_figures(database_url, seeded, tmp_path):
    page, paths = render(database_url, tmp_path)
    assert sorted(p.name for p in paths) == sorted(CHARTS + ["index.html"])
    for name in CHARTS:
        width, height = png_size(tmp_path / name)
        assert width >= 600 and height >= 300
        assert (tmp_path / name).stat().st_size > 10_000, f"{name} looks empty"
        assert f'<img src="{name}"' in page
    assert "no data" not in page
    assert table_rows(page, "status") == [
        ["open", "3"],
        ["in_progress", "1"],
        ["resolved", "2"],
        ["closed", "0"],
    ]
    assert table_rows(page, "severity") == [["low", "1"], ["medium", "1"], ["high", "2"], ["critical", "2"]]
    assert table_rows(page, "workload") == [["ana", "2", "1"]]
    assert ["high", "3.00", "3.00", "3.00"] in table_rows(page, "mttr")
    assert ["low", "–", "–", "–"] in table_rows(page, "mttr")
    daily = table_rows(page, "daily")
    assert len(daily) == 30
    assert sum(int(opened) for _, opened, _ in daily) == 6
    assert sum(int(resolved) for _, _, resolved in daily) == 2


def test_empty_database_renders_every_chart_saying_no_data(database_url, tmp_path):
    page, _ = render(database_url, tmp_path)
    for name in CHARTS:
        assert png_size(tmp_path / name) == (700, 400)
    assert page.count("<figcaption>no data</figcaption>") == len(CHARTS)
    assert table_rows(page, "status") == [
        ["open", "0"],
        ["in_progress", "0"],
        ["resolved", "0"],
        ["closed", "0"],
    ]
    assert table_rows(page, "workload") == []
