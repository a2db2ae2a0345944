"""Alert intake: POST /alerts (PagerDuty Events API v2) and POST /alerts/alertmanager
(Alertmanager webhook v4) open, acknowledge and resolve incidents by their dedup key; a repeat
alert changes nothing but its count; concurrent alerts of one new key make one incident."""

import copy
import json

import pytest

from tests.fix_server import call, gunicorn

# PagerDuty's documented Events API v2 examples (developer.pagerduty.com, "Send an Alert Event"):
# a trigger with every payload member and the sender's own members, then its acknowledge and
# resolve, which carry no payload.
PAGERDUTY_TRIGGER = {
    "payload": {
        "summary": "DISK at 99% on machine prod-datapipe03.example.com",
        "timestamp": "2015-07-17T08:42:58.315+0000",
        "severity": "critical",
        "source": "prod-datapipe03.example.com",
        "component": "mysql",
        "group": "prod-datapipe",
        "class": "deploy",
        "custom_details": {"free space": "1%", "ping time": "1500ms", "load avg": 0.75},
    },
    "routing_key": "e93facc04764012d7bfb002500d5d1a6",
    "dedup_key": "srv01/mysql",
    "event_action": "trigger",
    "client": "Sample Monitoring Service",
    "client_url": "https://monitoring.service.com",
    "links": [{"href": "http://acme.pagerduty.com", "text": "An example link."}],
    "images": [
        {
            "src": "https://chart.googleapis.com/chart?chs=600x400&chd=t:6,2,9,5,2,5,7,4,8,2,1&cht=lc",
            "href": "https://google.com",
            "alt": "An example link with an image",
        }
    ],
}
PAGERDUTY_ACKNOWLEDGE = {
    "routing_key": "e93facc04764012d7bfb002500d5d1a6",
    "dedup_key": "srv01/mysql",
    "event_action": "acknowledge",
}
PAGERDUTY_RESOLVE = {**PAGERDUTY_ACKNOWLEDGE, "event_action": "resolve"}

# Recorded: what Alertmanager 0.25.0 (the Debian package) posted to a webhook receiver for three
# alerts sent to its API: nanosecond timestamps, the zero time as endsAt of a firing alert, and
# members of its own.
ALERTMANAGER_FIRING = {
    "receiver": "incidents",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "HighRequestLatency",
                "category": "network",
                "instance": "api-1:9100",
                "job": "api",
                "severity": "warning",
            },
            "annotations": {
                "description": "p99 latency is 2.31s on api-1:9100",
                "summary": "Request latency is high",
            },
            "startsAt": "2026-12-02T13:23:38.930073705Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=job%3Aapi_latency_p99%3E1&g0.tab=1",
            "fingerprint": "c20b8bff9a1624f6",
        },
        {
            "status": "firing",
            "labels": {
                "alertname": "HighRequestLatency",
                "category": "network",
                "instance": "api-2:9100",
                "job": "api",
                "severity": "warning",
            },
            "annotations": {
                "description": "p99 latency is 1.87s on api-2:9100",
                "summary": "Request latency is high",
            },
            "startsAt": "2026-12-02T13:23:38.930073705Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=job%3Aapi_latency_p99%3E1&g0.tab=1",
            "fingerprint": "d0fef3d4d76842f5",
        },
        {
            "status": "firing",
            "labels": {
                "alertname": "HighRequestLatency",
                "category": "network",
                "instance": "api-3:9100",
                "job": "api",
                "severity": "warning",
            },
            "annotations": {
                "description": "p99 latency is 1.02s on api-3:9100",
                "summary": "Request latency is high",
            },
            "startsAt": "2026-12-02T13:23:38.930073705Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=job%3Aapi_latency_p99%3E1&g0.tab=1",
            "fingerprint": "8643de6f9cf582b0",
        },
    ],
    "groupLabels": {"alertname": "HighRequestLatency"},
    "commonLabels": {
        "alertname": "HighRequestLatency",
        "category": "network",
        "job": "api",
        "severity": "warning",
    },
    "commonAnnotations": {"summary": "Request latency is high"},
    "externalURL": "http://alertmanager.example.com:9093",
    "version": "4",
    "groupKey": '{}:{alertname="HighRequestLatency"}',
    "truncatedAlerts": 0,
}


def alertmanager_resolved():
    body = copy.deepcopy(ALERTMANAGER_FIRING)
    body["status"] = "resolved"
    for alert in body["alerts"]:
        alert["status"] = "resolved"
        alert["endsAt"] = "2026-12-02T13:31:08.930073705Z"
    return body


def post(client, path, body, user=None, headers=None):
    """POST of `body` as ASCII JSON (so that it may hold a lone surrogate, escaped)."""
    headers = {"Content-Type": "application/json", **(user["headers"] if user else {}), **(headers or {})}
    return client.simulate_post(path, body=json.dumps(body), headers=headers)


def accepted(result):
    assert result.status_code == 202, result.json
    assert set(result.json) == {"incident_id", "action", "dedup_key"}
    return result.json


def incident(client, user, incident_id):
    return client.simulate_get(f"/incidents/{incident_id}", headers=user["headers"])


def history(client, user, incident_id):
    return client.simulate_get(f"/incidents/{incident_id}/history", headers=user["headers"]).json["items"]


def counts(db_conn):
    return db_conn.execute(
        "SELECT (SELECT count(*) FROM incidents) AS incidents,"
        " (SELECT count(*) FROM incident_history) AS history,"
        " (SELECT count(*) FROM events) AS events,"
        " (SELECT count(*) FROM notifications) AS notifications"
    ).fetchone()


def pointers(result):
    assert result.status_code == 422, result.json
    assert result.headers["Content-Type"] == "application/problem+json"
    return sorted({error["pointer"] for error in result.json["errors"]})


def test_pagerduty_trigger_opens_acknowledge_and_resolve_move_it(client, db_conn, responder):
    created = accepted(post(client, "/alerts", PAGERDUTY_TRIGGER, responder))
    assert created["action"] == "created" and created["dedup_key"] == "srv01/mysql"
    shown = incident(client, responder, created["incident_id"]).json
    assert shown["title"] == "DISK at 99% on machine prod-datapipe03.example.com"
    assert (shown["severity"], shown["status"], shown["source"], shown["dedup_key"]) == (
        "critical",
        "open",
        "alerts",
        "srv01/mysql",
    )
    assert shown["reporter_id"] == responder["id"] and shown["assignee_id"] is None
    for line in ("source: prod-datapipe03.example.com", "component: mysql", "group: prod-datapipe"):
        assert line in shown["description"]
    assert '"free space": "1%"' in shown["description"] and "class: deploy" in shown["description"]
    assert [entry["action"] for entry in history(client, responder, shown["id"])] == ["created"]

    acknowledged = accepted(post(client, "/alerts", PAGERDUTY_ACKNOWLEDGE, responder))
    assert acknowledged == {"incident_id": shown["id"], "action": "updated", "dedup_key": "srv01/mysql"}
    now = incident(client, responder, shown["id"]).json
    assert now["status"] == "in_progress" and now["acknowledged_at"] is not None

    resolved = accepted(post(client, "/alerts", PAGERDUTY_RESOLVE, responder))
    assert resolved == {"incident_id": shown["id"], "action": "resolved", "dedup_key": "srv01/mysql"}
    assert incident(client, responder, shown["id"]).json["status"] == "resolved"
    entries = history(client, responder, shown["id"])
    assert [(e["action"], e["changes"]) for e in entries[1:]] == [
        ("status_changed", {"status": ["open", "in_progress"]}),
        ("resolved", {"status": ["in_progress", "resolved"]}),
    ]
    assert {e["actor_id"] for e in entries} == {responder["id"]}
    events = db_conn.execute(
        "SELECT type, (incident).source, (incident).dedup_key FROM events ORDER BY position"
    ).fetchall()
    assert [e["type"] for e in events] == ["incident.created", "incident.status_changed", "incident.resolved"]
    assert {(e["source"], e["dedup_key"]) for e in events} == {("alerts", "srv01/mysql")}


@pytest.mark.parametrize(
    "sent, severity", [("critical", "critical"), ("error", "high"), ("warning", "medium"), ("info", "low")]
)
def test_pagerduty_severities_map_to_incident_severities(client, responder, sent, severity):
    body = {**PAGERDUTY_TRIGGER, "payload": {**PAGERDUTY_TRIGGER["payload"], "severity": sent}}
    created = accepted(post(client, "/alerts", body, responder))
    assert incident(client, responder, created["incident_id"]).json["severity"] == severity


def test_a_repeated_trigger_counts_and_changes_nothing_else(client, db_conn, responder):
    first = accepted(post(client, "/alerts", PAGERDUTY_TRIGGER, responder))
    before = incident(client, responder, first["incident_id"])
    written = counts(db_conn)
    louder = {
        **PAGERDUTY_TRIGGER,
        "payload": {**PAGERDUTY_TRIGGER["payload"], "summary": "DISK at 100%", "severity": "info"},
    }
    for body in (PAGERDUTY_TRIGGER, louder):
        assert accepted(post(client, "/alerts", body, responder)) == {**first, "action": "updated"}
    after = incident(client, responder, first["incident_id"])
    assert after.json == before.json and after.headers["ETag"] == before.headers["ETag"]
    assert counts(db_conn) == written  # no history entry, event or notification
    row = db_conn.execute("SELECT alert_count, last_alert_at > created_at AS later FROM incidents").fetchone()
    assert row == {"alert_count": 3, "later": True}

    accepted(post(client, "/alerts", PAGERDUTY_ACKNOWLEDGE, responder))
    in_progress = incident(client, responder, first["incident_id"]).json
    assert accepted(post(client, "/alerts", PAGERDUTY_TRIGGER, responder))["action"] == "updated"
    assert incident(client, responder, first["incident_id"]).json == in_progress


def test_a_trigger_after_the_incident_was_resolved_opens_a_new_one(client, responder):
    first = accepted(post(client, "/alerts", PAGERDUTY_TRIGGER, responder))
    accepted(post(client, "/alerts", PAGERDUTY_RESOLVE, responder))
    second = accepted(post(client, "/alerts", PAGERDUTY_TRIGGER, responder))
    assert second["action"] == "created" and second["incident_id"] != first["incident_id"]
    listed = client.simulate_get(
        "/incidents", params={"dedup_key": "srv01/mysql"}, headers=responder["headers"]
    )
    assert [(i["id"], i["status"]) for i in listed.json["items"]] == [
        (second["incident_id"], "open"),
        (first["incident_id"], "resolved"),
    ]


def test_reopening_an_alert_incident_while_a_newer_one_is_open_is_409(client, responder):
    first = accepted(post(client, "/alerts", PAGERDUTY_TRIGGER, responder))
    accepted(post(client, "/alerts", PAGERDUTY_RESOLVE, responder))
    accepted(post(client, "/alerts", PAGERDUTY_TRIGGER, responder))
    result = client.simulate_patch(
        f"/incidents/{first['incident_id']}", json={"status": "open"}, headers=responder["headers"]
    )
    assert result.status_code == 409
    assert result.json["errors"][0]["pointer"] == "#/status"


def test_a_trigger_without_dedup_key_gets_a_new_one_each_time(client, responder):
    body = {k: v for k, v in PAGERDUTY_TRIGGER.items() if k != "dedup_key"}
    first = accepted(post(client, "/alerts", body, responder))
    second = accepted(post(client, "/alerts", body, responder))
    assert first["action"] == second["action"] == "created"
    assert len(first["dedup_key"]) == 32 and first["dedup_key"] != second["dedup_key"]
    shown = incident(client, responder, first["incident_id"]).json
    assert shown["dedup_key"] == first["dedup_key"]
    acknowledged = accepted(post(client, "/alerts", {**PAGERDUTY_ACKNOWLEDGE, **first}, responder))
    assert acknowledged["incident_id"] == first["incident_id"]


def test_a_replayed_trigger_without_dedup_key_returns_the_same_key(client, db_conn, responder):
    body = {k: v for k, v in PAGERDUTY_TRIGGER.items() if k != "dedup_key"}
    headers = {"Idempotency-Key": "page-once"}
    first = post(client, "/alerts", body, responder, headers)
    replay = post(client, "/alerts", body, responder, headers)
    assert replay.status_code == 202 and replay.json == first.json
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert counts(db_conn)["incidents"] == 1


def test_acknowledge_and_resolve_of_an_unknown_key_are_ignored(client, db_conn, responder):
    for body in (PAGERDUTY_ACKNOWLEDGE, PAGERDUTY_RESOLVE):
        result = accepted(post(client, "/alerts", body, responder))
        assert result == {"incident_id": None, "action": "ignored", "dedup_key": "srv01/mysql"}
    assert counts(db_conn) == {"incidents": 0, "history": 0, "events": 0, "notifications": 0}
    resolved = accepted(post(client, "/alerts/alertmanager", alertmanager_resolved(), responder))
    assert resolved["action"] == "ignored" and resolved["incident_id"] is None


def test_keys_of_the_two_endpoints_are_separate(client, responder):
    body = {**PAGERDUTY_TRIGGER, "dedup_key": ALERTMANAGER_FIRING["groupKey"]}
    paged = accepted(post(client, "/alerts", body, responder))
    grouped = accepted(post(client, "/alerts/alertmanager", ALERTMANAGER_FIRING, responder))
    assert grouped["action"] == "created" and grouped["incident_id"] != paged["incident_id"]


def test_alertmanager_group_opens_one_incident_repeats_change_nothing_resolved_resolves(
    client, db_conn, responder, make_category
):
    network = make_category("Network")
    make_category("storage")
    created = accepted(post(client, "/alerts/alertmanager", ALERTMANAGER_FIRING, responder))
    assert created["action"] == "created" and created["dedup_key"] == ALERTMANAGER_FIRING["groupKey"]
    shown = incident(client, responder, created["incident_id"])
    body = shown.json
    assert body["title"] == "Request latency is high"
    assert (body["severity"], body["source"], body["dedup_key"]) == (
        "high",
        "alertmanager",
        ALERTMANAGER_FIRING["groupKey"],
    )
    assert body["categories"] == [{"id": network["id"], "name": "Network"}]
    description = body["description"]
    assert "Alert 1 of 3 (firing, since 2026-12-02T13:23:38.930073705Z)" in description
    for instance in ("api-1:9100", "api-2:9100", "api-3:9100"):
        assert f"instance={instance}" in description
    assert "description=p99 latency is 1.87s on api-2:9100" in description

    written = counts(db_conn)
    repeat = copy.deepcopy(ALERTMANAGER_FIRING)
    repeat["alerts"] = repeat["alerts"][:2]  # one alert of the group stopped firing meanwhile
    assert accepted(post(client, "/alerts/alertmanager", repeat, responder))["action"] == "updated"
    again = incident(client, responder, created["incident_id"])
    assert again.json == body and again.headers["ETag"] == shown.headers["ETag"]
    assert counts(db_conn) == written

    resolved = accepted(post(client, "/alerts/alertmanager", alertmanager_resolved(), responder))
    assert resolved == {**created, "action": "resolved"}
    assert incident(client, responder, created["incident_id"]).json["status"] == "resolved"
    assert [e["action"] for e in history(client, responder, created["incident_id"])] == [
        "created",
        "resolved",
    ]
    assert accepted(post(client, "/alerts/alertmanager", alertmanager_resolved(), responder))["action"] == (
        "ignored"
    )
    reopened = accepted(post(client, "/alerts/alertmanager", ALERTMANAGER_FIRING, responder))
    assert reopened["action"] == "created" and reopened["incident_id"] != created["incident_id"]


@pytest.mark.parametrize(
    "common_labels, common_annotations, title, severity",
    [
        ({"alertname": "DiskFull", "severity": "critical"}, {}, "DiskFull", "critical"),
        ({"alertname": "DiskFull", "severity": "info"}, {"summary": "  "}, "DiskFull", "low"),
        ({"alertname": "DiskFull", "severity": "page"}, {"summary": "Disk full"}, "Disk full", "medium"),
        ({}, {}, "HighRequestLatency", "medium"),
    ],
)
def test_alertmanager_title_and_severity(
    client, responder, common_labels, common_annotations, title, severity
):
    body = {**ALERTMANAGER_FIRING, "commonLabels": common_labels, "commonAnnotations": common_annotations}
    created = accepted(post(client, "/alerts/alertmanager", body, responder))
    shown = incident(client, responder, created["incident_id"]).json
    assert (shown["title"], shown["severity"], shown["categories"]) == (title, severity, [])


def test_long_texts_are_clipped_to_what_an_incident_holds(client, responder):
    summary = "x" * 1024
    body = {**PAGERDUTY_TRIGGER, "payload": {**PAGERDUTY_TRIGGER["payload"], "summary": summary}}
    shown = incident(
        client, responder, accepted(post(client, "/alerts", body, responder))["incident_id"]
    ).json
    assert shown["title"] == "x" * 199 + "…" and shown["description"].startswith(summary)
    many = copy.deepcopy(ALERTMANAGER_FIRING)
    many["alerts"] = many["alerts"] * 200
    many["truncatedAlerts"] = 12
    shown = incident(
        client, responder, accepted(post(client, "/alerts/alertmanager", many, responder))["incident_id"]
    ).json
    assert len(shown["description"]) == 10000 and shown["description"].endswith("…")


def test_the_routing_key_may_carry_the_token_when_no_header_is_sent(client, db_conn, responder, reporter):
    created = accepted(post(client, "/alerts", {**PAGERDUTY_TRIGGER, "routing_key": responder["token"]}))
    assert incident(client, responder, created["incident_id"]).json["reporter_id"] == responder["id"]
    assert db_conn.execute("SELECT actor_id FROM incident_history").fetchone()["actor_id"] == responder["id"]
    as_reporter = post(client, "/alerts", {**PAGERDUTY_RESOLVE, "routing_key": reporter["token"]})
    assert as_reporter.status_code == 403
    for body in (
        PAGERDUTY_RESOLVE,  # PagerDuty's own integration key is no token here
        {**PAGERDUTY_RESOLVE, "routing_key": 42},
        {**PAGERDUTY_RESOLVE, "routing_key": "inc_\ud800"},
        {k: v for k, v in PAGERDUTY_RESOLVE.items() if k != "routing_key"},
    ):
        result = post(client, "/alerts", body)
        assert result.status_code == 401 and result.headers["WWW-Authenticate"].startswith("Bearer")
    # With a header, the header decides: a responder's routing_key does not help a reporter.
    result = post(client, "/alerts", {**PAGERDUTY_RESOLVE, "routing_key": responder["token"]}, reporter)
    assert result.status_code == 403
    # Alertmanager sends its token in the Authorization header only.
    result = post(client, "/alerts/alertmanager", {**ALERTMANAGER_FIRING, "routing_key": responder["token"]})
    assert result.status_code == 401


def test_intake_needs_a_responder_or_an_admin(client, db_conn, reporter, admin):
    assert post(client, "/alerts", PAGERDUTY_TRIGGER, reporter).status_code == 403
    assert post(client, "/alerts/alertmanager", ALERTMANAGER_FIRING, reporter).status_code == 403
    assert post(client, "/alerts/alertmanager", ALERTMANAGER_FIRING).status_code == 401
    assert counts(db_conn)["incidents"] == 0
    assert accepted(post(client, "/alerts/alertmanager", ALERTMANAGER_FIRING, admin))["action"] == "created"


@pytest.mark.parametrize(
    "body, expected",
    [
        ({}, ["#/event_action"]),
        ({"event_action": "snooze", "dedup_key": 7}, ["#/dedup_key", "#/event_action"]),
        ({"event_action": "trigger"}, ["#/payload"]),
        ({"event_action": "acknowledge"}, ["#/dedup_key"]),
        ({"event_action": "resolve", "dedup_key": " "}, ["#/dedup_key"]),
        ({"event_action": "resolve", "dedup_key": "k" * 256}, ["#/dedup_key"]),
        (
            {"event_action": "trigger", "payload": {"severity": "fatal", "custom_details": [1]}},
            ["#/payload/severity", "#/payload/source", "#/payload/summary"],
        ),
        (
            {
                "event_action": "trigger",
                "payload": {**PAGERDUTY_TRIGGER["payload"], "summary": "", "group": 3},
            },
            ["#/payload/group", "#/payload/summary"],
        ),
        ({**PAGERDUTY_TRIGGER, "payload": "DISK at 99%"}, ["#/payload"]),
        ({**PAGERDUTY_TRIGGER, "client": "nul \u0000"}, ["#/client"]),
        ([PAGERDUTY_TRIGGER], ["#"]),
    ],
)
def test_pagerduty_members_it_uses_are_validated(client, db_conn, responder, body, expected):
    assert pointers(post(client, "/alerts", body, responder)) == expected
    assert counts(db_conn)["incidents"] == 0


def alert_with(**members):
    return {**ALERTMANAGER_FIRING["alerts"][0], **members}


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"version": "3"}, ["#/version"]),
        ({"groupKey": "", "status": "pending"}, ["#/groupKey", "#/status"]),
        ({"groupKey": "k" * 513}, ["#/groupKey"]),
        ({"alerts": []}, ["#/alerts"]),
        ({"commonLabels": {"severity": 3}}, ["#/commonLabels/severity"]),
        (
            {
                "alerts": [
                    alert_with(startsAt="yesterday"),
                    alert_with(labels={"job": ["api"]}, annotations=[]),
                ]
            },
            ["#/alerts/0/startsAt", "#/alerts/1/annotations", "#/alerts/1/labels/job"],
        ),
        ({"alerts": [{"annotations": {}}]}, ["#/alerts/0/labels"]),
        ({"truncatedAlerts": -1}, ["#/truncatedAlerts"]),
    ],
)
def test_alertmanager_members_it_uses_are_validated(client, db_conn, responder, changes, expected):
    assert (
        pointers(post(client, "/alerts/alertmanager", {**ALERTMANAGER_FIRING, **changes}, responder))
        == expected
    )
    missing = {
        k: v for k, v in ALERTMANAGER_FIRING.items() if k not in ("version", "groupKey", "status", "alerts")
    }
    assert pointers(post(client, "/alerts/alertmanager", missing, responder)) == [
        "#/alerts",
        "#/groupKey",
        "#/status",
        "#/version",
    ]
    assert counts(db_conn)["incidents"] == 0


def test_a_body_over_1_mib_is_413(client, responder):
    for path, body in (("/alerts", PAGERDUTY_TRIGGER), ("/alerts/alertmanager", ALERTMANAGER_FIRING)):
        big = {**body, "padding": "x" * (1024 * 1024)}
        result = post(client, path, big, responder)
        assert result.status_code == 413 and result.headers["Content-Type"] == "application/problem+json"
    no_header = client.simulate_post(
        "/alerts",
        body=json.dumps({**PAGERDUTY_TRIGGER, "padding": "x" * (1024 * 1024)}),
        headers={"Content-Type": "application/json"},
    )
    assert no_header.status_code == 413


def test_incidents_show_source_and_dedup_key_and_lists_filter_by_them(client, responder, make_incident):
    reported = make_incident(responder)
    assert (reported["source"], reported["dedup_key"]) == ("api", None)
    paged = accepted(post(client, "/alerts", PAGERDUTY_TRIGGER, responder))
    grouped = accepted(post(client, "/alerts/alertmanager", ALERTMANAGER_FIRING, responder))

    def listed(**params):
        result = client.simulate_get("/incidents", params=params, headers=responder["headers"])
        assert result.status_code == 200, result.json
        return [item["id"] for item in result.json["items"]]

    assert listed(source="api") == [reported["id"]]
    assert listed(source="alerts,alertmanager") == [grouped["incident_id"], paged["incident_id"]]
    assert listed(dedup_key="srv01/mysql") == [paged["incident_id"]]
    assert listed(dedup_key="srv01/mysql", source="alertmanager") == []
    stats = client.simulate_get("/incidents/stats", params={"source": "alerts"}, headers=responder["headers"])
    assert stats.json["by_severity"]["critical"] == 1 and sum(stats.json["by_status"].values()) == 1
    for query in ("source=email", "dedup_key=", "source=api&source=alerts"):
        result = client.simulate_get("/incidents", query_string=query, headers=responder["headers"])
        assert result.status_code == 400, query


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("alerts") / "gunicorn.log"
    with gunicorn(database_url, log) as (base, _):
        yield base
    assert "Traceback" not in log.read_text()


def test_16_concurrent_triggers_of_one_new_key_make_one_incident(server, db_conn, responder):
    import concurrent.futures
    import threading

    start = threading.Barrier(16)
    body = {**PAGERDUTY_TRIGGER, "dedup_key": "raced"}

    def send(_):
        start.wait()
        return call("POST", server + "/alerts", body, responder["headers"])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(send, range(16)))
    assert sorted(reply.status for reply in replies) == [202] * 16
    assert sorted(reply.body["action"] for reply in replies) == ["created"] + ["updated"] * 15
    assert len({reply.body["incident_id"] for reply in replies}) == 1
    assert db_conn.execute("SELECT count(*) AS n, max(alert_count) AS alerts FROM incidents").fetchone() == {
        "n": 1,
        "alerts": 16,
    }
    assert counts(db_conn)["history"] == 1 and counts(db_conn)["events"] == 1


@pytest.mark.parametrize(
    "content_type, body, status",
    [
        ("text/plain", json.dumps(PAGERDUTY_TRIGGER), 415),
        ("application/json", "{bad", 400),
        ("application/json", "", 401),
        (None, json.dumps(PAGERDUTY_TRIGGER), 401),
    ],
)
def test_a_body_without_a_header_is_read_like_any_other(client, content_type, body, status):
    headers = {"Content-Type": content_type} if content_type else {}
    result = client.simulate_post("/alerts", body=body, headers=headers)
    assert result.status_code == status
    assert result.headers["Content-Type"] == "application/problem+json"
