"""GET /incidents/stats against figures computed here from controlled timestamps."""
import datetime

import pytest

SEVERITIES = ["low", "medium", "high", "critical"]
NOW = datetime.datetime.now(datetime.timezone.utc)
TODAY = NOW.date()


def percentile(values, fraction):
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def figures(values):
    if not values:
        return {"mean": None, "p50": None, "p90": None}
    return {"mean": sum(values) / len(values), "p50": percentile(values, 0.5), "p90": percentile(values, 0.9)}


def insert(db_conn, reporter_id, severity, created, acknowledged=None, resolved=None, status=None, assignee_id=None):
    status = status or ("resolved" if resolved else "in_progress" if acknowledged else "open")
    db_conn.execute(
        "INSERT INTO incidents (title, severity, status, reporter_id, assignee_id, created_at, acknowledged_at, resolved_at)"
        " VALUES ('t', %s, %s, %s, %s, %s, %s, %s)",
        [severity, status, reporter_id, assignee_id, created, acknowledged, resolved])


@pytest.fixture
def seeded(db_conn, reporter, make_user):
    """Incidents over the last days with known MTTA/MTTR; returns what the stats must say."""
    ana, bob = make_user("responder", username="ana"), make_user("responder", username="bob")
    ack, res = {s: [] for s in SEVERITIES}, {s: [] for s in SEVERITIES}
    opened, resolved_on, rows = {}, {}, []
    for n in range(24):
        severity = SEVERITIES[n % 3]              # no critical incidents at all
        created = NOW - datetime.timedelta(days=n % 5, hours=1 + n)
        acknowledged = created + datetime.timedelta(minutes=5 * (n + 1)) if n % 4 else None
        resolved = acknowledged + datetime.timedelta(hours=n) if acknowledged and n % 2 else None
        assignee = [ana["id"], bob["id"], None][n % 3] if not resolved else None
        insert(db_conn, reporter["id"], severity, created, acknowledged, resolved, assignee_id=assignee)
        rows.append({"severity": severity, "assignee_id": assignee, "created": created})
        if acknowledged:
            ack[severity].append((acknowledged - created).total_seconds())
        if resolved:
            res[severity].append((resolved - created).total_seconds())
            resolved_on[resolved.date()] = resolved_on.get(resolved.date(), 0) + 1
        opened[created.date()] = opened.get(created.date(), 0) + 1
    return {"ack": ack, "res": res, "opened": opened, "resolved_on": resolved_on, "rows": rows,
            "ana": ana, "bob": bob}


def stats(client, user, qs=""):
    result = client.simulate_get("/incidents/stats", query_string=qs, headers=user["headers"])
    assert result.status_code == 200, result.json
    return result.json


def assert_figures(actual, values_by_severity):
    everything = [v for values in values_by_severity.values() for v in values]
    assert actual["mean"] == pytest.approx(figures(everything)["mean"])
    assert actual["p50"] == pytest.approx(figures(everything)["p50"])
    assert actual["p90"] == pytest.approx(figures(everything)["p90"])
    assert list(actual["by_severity"]) == SEVERITIES
    for severity, values in values_by_severity.items():
        expected = figures(values)
        assert actual["by_severity"][severity] == (expected if expected["mean"] is None else pytest.approx(expected))


def test_counts_mtta_mttr_workload_and_daily(client, reporter, seeded):
    body = stats(client, reporter, "days=7")
    assert body["by_status"] == {"open": 6, "in_progress": 6, "resolved": 12, "closed": 0}
    assert body["by_severity"] == {"low": 8, "medium": 8, "high": 8, "critical": 0}
    assert list(body["by_status"]) == ["open", "in_progress", "resolved", "closed"]
    assert_figures(body["mtta_seconds"], seeded["ack"])
    assert_figures(body["mttr_seconds"], seeded["res"])
    assert body["mttr_seconds"]["by_severity"]["critical"] == {"mean": None, "p50": None, "p90": None}
    workload = {w["username"]: (w["open"], w["in_progress"]) for w in body["workload"]}
    assert set(workload) == {"ana", "bob"}
    assert [w["open"] + w["in_progress"] for w in body["workload"]] == sorted(
        (w["open"] + w["in_progress"] for w in body["workload"]), reverse=True)
    assert [d["date"] for d in body["daily"]] == [(TODAY - datetime.timedelta(days=k)).isoformat() for k in range(6, -1, -1)]
    for day in body["daily"]:
        date = datetime.date.fromisoformat(day["date"])
        assert day["opened"] == seeded["opened"].get(date, 0)
        assert day["resolved"] == seeded["resolved_on"].get(date, 0)
    assert body["daily"][0] == {"date": (TODAY - datetime.timedelta(days=6)).isoformat(), "opened": 0, "resolved": 0}


def test_filters_narrow_every_figure(client, reporter, seeded):
    ana = seeded["ana"]["id"]
    body = stats(client, reporter, f"severity=low&assignee_id={ana}")
    expected = sum(1 for r in seeded["rows"] if r["severity"] == "low" and r["assignee_id"] == ana)
    assert expected > 0
    assert body["by_severity"] == {"low": expected, "medium": 0, "high": 0, "critical": 0}
    assert [w["username"] for w in body["workload"]] == ["ana"]
    cut = NOW - datetime.timedelta(days=2)
    recent = stats(client, reporter, f"created_after={cut.isoformat().replace('+00:00', 'Z')}")
    assert sum(recent["by_status"].values()) == sum(1 for r in seeded["rows"] if r["created"] >= cut)


def test_empty_selection_has_zeros_and_nulls(client, reporter):
    body = stats(client, reporter)
    assert body["by_status"] == {"open": 0, "in_progress": 0, "resolved": 0, "closed": 0}
    assert body["mtta_seconds"]["mean"] is None and body["mttr_seconds"]["p90"] is None
    assert body["workload"] == []
    assert len(body["daily"]) == 30 and all(d["opened"] == d["resolved"] == 0 for d in body["daily"])


@pytest.mark.parametrize("qs", ["days=0", "days=abc", "days=100000", "limit=5", "sort=severity", "bogus=1"])
def test_bad_parameters_are_400(client, reporter, qs):
    assert client.simulate_get("/incidents/stats", query_string=qs, headers=reporter["headers"]).status_code == 400
