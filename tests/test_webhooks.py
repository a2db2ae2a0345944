"""Webhooks through the API: admin only, the secret shown once, URL safety, changes, ping,
secret rotation (signatures checked with the reference verifier), the delivery log and
redelivery requests. (What the delivery worker sends: tests/test_delivery.py.)"""

import dataclasses
import json

import jsonschema
import pytest
import standardwebhooks

from api.schemas import EVENT_TYPES, WEBHOOK, WEBHOOK_CREATED
from tests.fix_webhooks import subscribe


def verify(secret, received):
    return standardwebhooks.Webhook(secret).verify(received.body, received.headers)


def test_an_admin_creates_a_webhook_and_sees_its_secret_only_then(
    loopback_client, admin, responder, make_incident
):
    make_incident(responder)
    feed_end = loopback_client.simulate_get("/events", headers=admin["headers"]).json["next_cursor"]
    result = loopback_client.simulate_post(
        "/webhooks", json={"url": "http://127.0.0.1:9/hook", "description": "chat"}, headers=admin["headers"]
    )
    assert result.status_code == 201
    webhook = result.json
    jsonschema.validate(webhook, WEBHOOK_CREATED)
    assert result.headers["location"] == f"/webhooks/{webhook['id']}"
    assert webhook["secret"].startswith("whsec_")
    assert webhook["event_types"] == EVENT_TYPES
    assert (webhook["active"], webhook["disabled_reason"]) == (True, None)
    assert str(webhook["cursor"]) == feed_end  # starts at the feed's current end

    shown = loopback_client.simulate_get(f"/webhooks/{webhook['id']}", headers=admin["headers"]).json
    jsonschema.validate(shown, WEBHOOK)
    assert shown == {k: v for k, v in webhook.items() if k != "secret"}
    listed = loopback_client.simulate_get("/webhooks", headers=admin["headers"]).json
    assert listed["items"] == [shown]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/webhooks"),
        ("POST", "/webhooks"),
        ("GET", "/webhooks/{id}"),
        ("PATCH", "/webhooks/{id}"),
        ("DELETE", "/webhooks/{id}"),
        ("POST", "/webhooks/{id}/ping"),
        ("POST", "/webhooks/{id}/rotate-secret"),
        ("GET", "/webhooks/{id}/deliveries"),
        ("POST", "/webhooks/{id}/redeliver"),
    ],
)
def test_only_admins_use_webhooks(loopback_client, admin, responder, method, path):
    webhook = subscribe(loopback_client, admin, "http://127.0.0.1:9/")
    body = {"url": "http://127.0.0.1:9/", "event_ids": ["evt_1"]} if method in ("POST", "PATCH") else None
    result = loopback_client.simulate_request(
        method, path.format(id=webhook["id"]), json=body, headers=responder["headers"]
    )
    assert result.status_code == 403
    assert (
        loopback_client.simulate_get(f"/webhooks/{webhook['id']}", headers=admin["headers"]).status_code
        == 200
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/hook",  # a host that resolves to loopback
        "http://127.0.0.1:8000/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http:///no-host",
        "http://example.com:99999/",
        "http://no-such-host.invalid/",
    ],
)
def test_unsafe_urls_are_refused(client, admin, url):
    """With WEBHOOK_ALLOWED_NETWORKS empty (the default), nothing but public addresses."""
    result = client.simulate_post("/webhooks", json={"url": url}, headers=admin["headers"])
    assert result.status_code == 422, result.json
    assert [e["pointer"] for e in result.json["errors"]] == ["#/url"]
    created = client.simulate_get("/webhooks", headers=admin["headers"]).json["items"]
    assert created == []


def test_a_change_of_url_is_checked_too(client, loopback_client, admin):
    webhook = subscribe(loopback_client, admin, "http://127.0.0.1:9/")
    result = client.simulate_patch(
        f"/webhooks/{webhook['id']}", json={"url": "http://127.0.0.2/"}, headers=admin["headers"]
    )
    assert result.status_code == 422
    assert result.json["errors"][0]["pointer"] == "#/url"


def test_patch_changes_what_it_names(loopback_client, admin):
    webhook = subscribe(loopback_client, admin, "http://127.0.0.1:9/", description="old")
    path = f"/webhooks/{webhook['id']}"
    changed = loopback_client.simulate_patch(
        path,
        json={"event_types": ["incident.created"], "description": None, "active": False, "cursor": 0},
        headers=admin["headers"],
    ).json
    assert (changed["event_types"], changed["description"], changed["active"], changed["cursor"]) == (
        ["incident.created"],
        None,
        False,
        0,
    )
    assert changed["url"] == webhook["url"]
    again = loopback_client.simulate_patch(
        path, json={"url": "http://127.0.0.1:10/"}, headers=admin["headers"]
    )
    assert (again.json["url"], again.json["active"], again.json["event_types"]) == (
        "http://127.0.0.1:10/",
        False,
        ["incident.created"],
    )


@pytest.mark.parametrize(
    "body",
    [
        {"secret": "whsec_mine"},
        {"event_types": []},
        {"event_types": ["incident.exploded"]},
        {"event_types": ["incident.created", "incident.created"]},
        {"cursor": -1},
        {"active": "yes"},
        {"url": 7},
    ],
)
def test_bad_changes_are_422(loopback_client, admin, body):
    webhook = subscribe(loopback_client, admin, "http://127.0.0.1:9/")
    result = loopback_client.simulate_patch(f"/webhooks/{webhook['id']}", json=body, headers=admin["headers"])
    assert result.status_code == 422
    assert result.json["errors"]


def test_delete(loopback_client, admin):
    webhook = subscribe(loopback_client, admin, "http://127.0.0.1:9/")
    path = f"/webhooks/{webhook['id']}"
    assert loopback_client.simulate_delete(path, headers=admin["headers"]).status_code == 204
    assert loopback_client.simulate_get(path, headers=admin["headers"]).status_code == 404
    assert loopback_client.simulate_delete(path, headers=admin["headers"]).status_code == 404


def test_ping_sends_a_signed_message_now(loopback_client, admin, hook_receiver):
    webhook = subscribe(loopback_client, admin, hook_receiver.url + "/hook")
    result = loopback_client.simulate_post(f"/webhooks/{webhook['id']}/ping", headers=admin["headers"])
    assert result.status_code == 200
    assert result.json["delivered"] is True
    assert (result.json["status_code"], result.json["error"]) == (200, None)
    [received] = hook_receiver.got()
    assert received.path == "/hook"
    assert received.headers["content-type"] == "application/json"
    message = verify(webhook["secret"], received)
    assert message["type"] == "webhook.ping"
    assert message["data"] == {"webhook_id": webhook["id"]}
    assert received.headers["webhook-id"] == message["id"]

    log = loopback_client.simulate_get(f"/webhooks/{webhook['id']}/deliveries", headers=admin["headers"]).json
    assert [(d["event_id"], d["position"], d["status_code"]) for d in log["items"]] == [
        (message["id"], None, 200)
    ]


def test_a_failed_ping_says_why(loopback_client, admin, hook_receiver):
    hook_receiver.default_status = 500
    failing = subscribe(loopback_client, admin, hook_receiver.url)
    result = loopback_client.simulate_post(f"/webhooks/{failing['id']}/ping", headers=admin["headers"]).json
    assert (result["delivered"], result["status_code"]) == (False, 500)
    assert "500" in result["error"]

    closed = subscribe(loopback_client, admin, "http://127.0.0.1:9/")  # the discard port: refused
    result = loopback_client.simulate_post(f"/webhooks/{closed['id']}/ping", headers=admin["headers"]).json
    assert (result["delivered"], result["status_code"]) == (False, None)
    assert result["error"]


def test_a_redirect_is_not_followed(loopback_client, admin, hook_receiver):
    hook_receiver.statuses = [302]
    webhook = subscribe(loopback_client, admin, hook_receiver.url)
    result = loopback_client.simulate_post(f"/webhooks/{webhook['id']}/ping", headers=admin["headers"]).json
    assert (result["delivered"], result["status_code"]) == (False, 302)
    assert [r.path for r in hook_receiver.got()] == ["/"]


def test_after_a_rotation_both_secrets_sign_and_nothing_else_verifies(loopback_client, admin, hook_receiver):
    webhook = subscribe(loopback_client, admin, hook_receiver.url)
    rotated = loopback_client.simulate_post(
        f"/webhooks/{webhook['id']}/rotate-secret", headers=admin["headers"]
    )
    assert rotated.status_code == 200
    new_secret = rotated.json["secret"]
    assert new_secret.startswith("whsec_") and new_secret != webhook["secret"]
    loopback_client.simulate_post(f"/webhooks/{webhook['id']}/ping", headers=admin["headers"])
    [received] = hook_receiver.got()
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    verify(webhook["secret"], received)
    verify(new_secret, received)

    tampered = dataclasses.replace(received, body=received.body.replace(b"ping", b"pong"))
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        verify(new_secret, tampered)
    wrong = "whsec_" + "QUJD" * 11
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        verify(wrong, received)


def test_redeliver_queues_kept_events_and_names_missing_ones(
    loopback_client, db_conn, admin, responder, make_incident
):
    webhook = subscribe(loopback_client, admin, "http://127.0.0.1:9/")
    make_incident(responder)
    [event] = loopback_client.simulate_get("/events", headers=admin["headers"]).json["items"]
    path = f"/webhooks/{webhook['id']}/redeliver"
    missing = loopback_client.simulate_post(
        path, json={"event_ids": [event["id"], "evt_1"]}, headers=admin["headers"]
    )
    assert missing.status_code == 422
    assert [e["pointer"] for e in missing.json["errors"]] == ["#/event_ids/1"]
    for bad in ["1", "evt_", "evt_x", "evt_01"]:
        result = loopback_client.simulate_post(path, json={"event_ids": [bad]}, headers=admin["headers"])
        assert result.status_code == 422, bad
    queued = loopback_client.simulate_post(path, json={"event_ids": [event["id"]]}, headers=admin["headers"])
    assert (queued.status_code, queued.json) == (202, {"queued": 1})
    rows = db_conn.execute("SELECT webhook_id, position FROM webhook_redeliveries").fetchall()
    assert rows == [{"webhook_id": webhook["id"], "position": event["position"]}]
    unknown = loopback_client.simulate_post(
        "/webhooks/999999/redeliver", json={"event_ids": [event["id"]]}, headers=admin["headers"]
    )
    assert unknown.status_code == 404


def test_redeliver_counts_an_event_named_twice_once(
    loopback_client, db_conn, admin, responder, make_incident
):
    """As the delivery log lists an event once per attempt, a list of its ids may repeat one."""
    webhook = subscribe(loopback_client, admin, "http://127.0.0.1:9/")
    make_incident(responder)
    make_incident(responder)
    first, second = loopback_client.simulate_get("/events", headers=admin["headers"]).json["items"]
    queued = loopback_client.simulate_post(
        f"/webhooks/{webhook['id']}/redeliver",
        json={"event_ids": [first["id"], second["id"], first["id"]]},
        headers=admin["headers"],
    )
    assert (queued.status_code, queued.json) == (202, {"queued": 2})
    rows = db_conn.execute("SELECT position FROM webhook_redeliveries ORDER BY position").fetchall()
    assert [row["position"] for row in rows] == [first["position"], second["position"]]


def test_the_secret_is_never_in_a_listing_or_a_log(loopback_client, admin):
    webhook = subscribe(loopback_client, admin, "http://127.0.0.1:9/")
    for path in ["/webhooks", f"/webhooks/{webhook['id']}", f"/webhooks/{webhook['id']}/deliveries"]:
        body = loopback_client.simulate_get(path, headers=admin["headers"]).json
        assert webhook["secret"] not in json.dumps(body)
