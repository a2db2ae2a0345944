"""Resolve, history, notifications and follows (the incident lifecycle)."""

import asyncio

import falcon.testing
import pytest


def history(client, user, incident_id):
    result = client.simulate_get(f"/incidents/{incident_id}/history", headers=user["headers"])
    assert result.status_code == 200
    return result.json["items"]


def notifications(client, user, qs=""):
    result = client.simulate_get("/notifications", query_string=qs, headers=user["headers"])
    assert result.status_code == 200
    return [(n["event"], n["incident_id"], n["actor_id"]) for n in result.json["items"]]


def count(db_conn, table):
    return db_conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]


def test_resolve_sets_resolved_with_resolution_and_is_idempotent(client, reporter, responder, make_incident):
    url = f"/incidents/{make_incident(reporter)['id']}"
    result = client.simulate_post(
        url + "/resolve", json={"resolution": "fixed DNS"}, headers=responder["headers"]
    )
    assert result.status_code == 200
    body = result.json
    assert body["status"] == "resolved" and body["resolution"] == "fixed DNS"
    assert body["resolved_at"] is not None and body["acknowledged_at"] is not None
    assert body["allowed_transitions"] == ["open", "closed"]
    again = client.simulate_post(url + "/resolve", json={"resolution": "other"}, headers=responder["headers"])
    assert again.status_code == 200 and again.json == body


def test_resolve_without_body_and_its_rules(client, reporter, responder, make_incident):
    url = f"/incidents/{make_incident(reporter)['id']}"
    assert client.simulate_post(url + "/resolve", headers=reporter["headers"]).status_code == 403
    client.simulate_patch(url, json={"status": "closed"}, headers=responder["headers"])
    closed = client.simulate_post(url + "/resolve", headers=responder["headers"])
    assert closed.status_code == 409 and closed.json["allowed_transitions"] == ["open"]
    client.simulate_patch(url, json={"status": "open"}, headers=responder["headers"])
    resolved = client.simulate_post(url + "/resolve", headers=responder["headers"])
    assert resolved.status_code == 200 and resolved.json["resolution"] is None
    assert client.simulate_post("/incidents/999/resolve", headers=responder["headers"]).status_code == 404
    bad = client.simulate_post(
        url + "/resolve", json={"resolution": 5, "why": 1}, headers=responder["headers"]
    )
    assert bad.status_code == 422


def test_each_action_writes_one_entry_with_old_and_new_values(
    client, reporter, responder, make_incident, make_category
):
    cat = make_category("db")
    incident = make_incident(reporter, title="Slow", severity="high")
    url = f"/incidents/{incident['id']}"
    steps = [
        (reporter, "patch", {"title": "Slow API", "description": "p99 up"}),
        (responder, "patch", {"assignee_id": responder["id"], "severity": "critical"}),
        (responder, "patch", {"category_ids": [cat["id"]]}),
        (responder, "patch", {"status": "in_progress"}),
        (reporter, "comment", {"content": "any news?"}),
        (responder, "resolve", {"resolution": "index added"}),
    ]
    comment_id = None
    for user, kind, body in steps:
        if kind == "patch":
            assert client.simulate_patch(url, json=body, headers=user["headers"]).status_code == 200
        elif kind == "comment":
            comment_id = client.simulate_post(url + "/comments", json=body, headers=user["headers"]).json[
                "id"
            ]
        else:
            assert (
                client.simulate_post(url + "/resolve", json=body, headers=user["headers"]).status_code == 200
            )
    entries = history(client, reporter, incident["id"])
    assert [(e["action"], e["actor_id"], e["changes"]) for e in entries] == [
        (
            "created",
            reporter["id"],
            {
                "title": [None, "Slow"],
                "description": [None, ""],
                "status": [None, "open"],
                "severity": [None, "high"],
                "assignee_id": [None, None],
                "category_ids": [None, []],
            },
        ),
        ("updated", reporter["id"], {"title": ["Slow", "Slow API"], "description": ["", "p99 up"]}),
        (
            "assigned",
            responder["id"],
            {"assignee_id": [None, responder["id"]], "severity": ["high", "critical"]},
        ),
        ("categorized", responder["id"], {"category_ids": [[], [cat["id"]]]}),
        ("status_changed", responder["id"], {"status": ["open", "in_progress"]}),
        ("commented", reporter["id"], {"comment_id": [None, comment_id]}),
        (
            "resolved",
            responder["id"],
            {"status": ["in_progress", "resolved"], "resolution": [None, "index added"]},
        ),
    ]
    assert all(e["incident_id"] == incident["id"] and e["created_at"].endswith("+00:00") for e in entries)


def test_no_change_writes_no_history(client, reporter, make_incident, db_conn):
    incident = make_incident(reporter, title="same")
    client.simulate_patch(f"/incidents/{incident['id']}", json={"title": "same"}, headers=reporter["headers"])
    assert count(db_conn, "incident_history") == 1


@pytest.mark.parametrize(
    "role, request_kwargs, status",
    [
        ("reporter", {"json": {"title": ""}}, 422),  # validation
        ("reporter", {"json": {"status": "closed"}}, 403),  # permission
        ("responder", {"json": {"status": "resolved"}, "headers": {"If-Match": '"7"'}}, 412),  # stale
        ("responder", {"json": {"status": "resolved", "category_ids": [404]}}, 422),  # unknown category
    ],
)
def test_failed_requests_write_no_history_and_no_notification(
    client, reporter, make_user, make_incident, db_conn, role, request_kwargs, status
):
    actor = reporter if role == "reporter" else make_user(role)
    client.simulate_post(f"/users/{actor['id']}/follow", headers=make_user()["headers"])
    incident = make_incident(reporter)
    before = (count(db_conn, "incident_history"), count(db_conn, "notifications"))
    headers = {**actor["headers"], **request_kwargs.get("headers", {})}
    result = client.simulate_patch(
        f"/incidents/{incident['id']}", json=request_kwargs["json"], headers=headers
    )
    assert result.status_code == status
    assert (count(db_conn, "incident_history"), count(db_conn, "notifications")) == before


def test_failed_resolve_rolls_back_its_update(client, reporter, responder, make_incident, db_conn):
    incident = make_incident(reporter)
    db_conn.execute(
        "ALTER TABLE incident_history ADD CONSTRAINT no_resolved CHECK (action <> 'resolved') NOT VALID"
    )
    try:
        result = client.simulate_post(f"/incidents/{incident['id']}/resolve", headers=responder["headers"])
        assert result.status_code == 422
    finally:
        db_conn.execute("ALTER TABLE incident_history DROP CONSTRAINT no_resolved")
    row = db_conn.execute("SELECT status, version FROM incidents WHERE id = %s", [incident["id"]]).fetchone()
    assert row == {"status": "open", "version": 1}
    assert count(db_conn, "notifications") == 0


def test_concurrent_updates_leave_a_chained_history(client, reporter, responder, make_incident, app):
    incident = make_incident(reporter)
    url = f"/incidents/{incident['id']}"
    severities = ["low", "medium", "high", "critical"] * 5
    errors = []

    async def worker(conductor, offset):
        for severity in severities[offset::2]:
            result = await conductor.simulate_patch(
                url,
                json={"severity": severity, "title": f"t{offset}{severity}"},
                headers=responder["headers"],
            )
            if result.status_code != 200:
                errors.append(result.status_code)

    async def two_workers():
        async with falcon.testing.ASGIConductor(app) as conductor:
            await asyncio.gather(worker(conductor, 0), worker(conductor, 1))

    falcon.async_to_sync(two_workers)
    assert errors == []
    entries = history(client, reporter, incident["id"])
    values = {"title": incident["title"], "severity": incident["severity"]}
    for entry in entries[1:]:
        for field, (old, new) in entry["changes"].items():
            assert old == values[field]
            values[field] = new
    final = client.simulate_get(url, headers=reporter["headers"]).json
    assert {"title": final["title"], "severity": final["severity"]} == values
    assert final["version"] == len(entries)


def test_history_survives_deactivation_and_blocks_deletion(client, reporter, responder, admin, make_incident):
    incident = make_incident(reporter)
    client.simulate_patch(
        f"/incidents/{incident['id']}", json={"status": "closed"}, headers=responder["headers"]
    )
    assert (
        client.simulate_patch(
            f"/users/{responder['id']}", json={"active": False}, headers=admin["headers"]
        ).status_code
        == 200
    )
    assert history(client, reporter, incident["id"])[-1]["actor_id"] == responder["id"]
    assert client.simulate_delete(f"/users/{responder['id']}", headers=admin["headers"]).status_code == 409


def test_history_of_missing_incident_is_404_and_history_paginates(client, reporter, make_incident):
    assert client.simulate_get("/incidents/999/history", headers=reporter["headers"]).status_code == 404
    incident = make_incident(reporter)
    for n in range(4):
        client.simulate_patch(
            f"/incidents/{incident['id']}", json={"title": f"t{n}"}, headers=reporter["headers"]
        )
    first = client.simulate_get(
        f"/incidents/{incident['id']}/history", query_string="limit=3", headers=reporter["headers"]
    ).json
    rest = client.simulate_get(
        f"/incidents/{incident['id']}/history",
        query_string=f"limit=3&cursor={first['next_cursor']}",
        headers=reporter["headers"],
    ).json
    assert [e["id"] for e in first["items"] + rest["items"]] == sorted(
        e["id"] for e in first["items"] + rest["items"]
    )
    assert len(first["items"] + rest["items"]) == 5 and rest["next_cursor"] is None


def test_assignment_notifies_the_assignee_but_not_oneself(
    client, reporter, responder, make_user, make_incident
):
    other = make_user("responder")
    incident = make_incident(reporter)
    url = f"/incidents/{incident['id']}"
    client.simulate_patch(url, json={"assignee_id": responder["id"]}, headers=responder["headers"])
    assert notifications(client, responder) == []
    client.simulate_patch(url, json={"assignee_id": other["id"]}, headers=responder["headers"])
    assert notifications(client, other) == [("assigned", incident["id"], responder["id"])]
    created = make_incident(responder, assignee_id=other["id"])
    assert notifications(client, other)[0] == ("assigned", created["id"], responder["id"])


def test_resolution_notifies_the_reporter(client, reporter, responder, make_incident):
    incident = make_incident(reporter)
    client.simulate_patch(
        f"/incidents/{incident['id']}", json={"status": "resolved"}, headers=responder["headers"]
    )
    assert notifications(client, reporter) == [("resolved", incident["id"], responder["id"])]
    own = make_incident(responder)
    client.simulate_post(f"/incidents/{own['id']}/resolve", headers=responder["headers"])
    assert notifications(client, responder) == []


def test_followers_are_notified_of_reports_and_resolutions_until_they_unfollow(
    client, reporter, responder, make_user, make_incident
):
    fan = make_user()
    assert client.simulate_post(f"/users/{responder['id']}/follow", headers=fan["headers"]).status_code == 204
    assert client.simulate_post(f"/users/{reporter['id']}/follow", headers=fan["headers"]).status_code == 204
    reported = make_incident(reporter)
    client.simulate_post(f"/incidents/{reported['id']}/resolve", headers=responder["headers"])
    assert notifications(client, fan) == [
        ("followed_resolved", reported["id"], responder["id"]),
        ("followed_reported", reported["id"], reporter["id"]),
    ]
    assert (
        client.simulate_delete(f"/users/{responder['id']}/follow", headers=fan["headers"]).status_code == 204
    )
    other = make_incident(reporter)
    client.simulate_post(f"/incidents/{other['id']}/resolve", headers=responder["headers"])
    assert notifications(client, fan)[0] == ("followed_reported", other["id"], reporter["id"])


def test_a_follower_who_is_also_the_reporter_gets_one_notification(
    client, reporter, responder, make_incident
):
    client.simulate_post(f"/users/{responder['id']}/follow", headers=reporter["headers"])
    incident = make_incident(reporter)
    client.simulate_post(f"/incidents/{incident['id']}/resolve", headers=responder["headers"])
    assert notifications(client, reporter) == [("resolved", incident["id"], responder["id"])]


def test_unread_filter_and_mark_read(client, reporter, responder, make_incident, make_user):
    for _ in range(2):
        incident = make_incident(reporter)
        client.simulate_post(f"/incidents/{incident['id']}/resolve", headers=responder["headers"])
    items = client.simulate_get("/notifications", headers=reporter["headers"]).json["items"]
    assert [n["read"] for n in items] == [False, False]
    assert items[0]["id"] > items[1]["id"]
    assert (
        client.simulate_post(f"/notifications/{items[0]['id']}/read", headers=reporter["headers"]).status_code
        == 204
    )
    unread = client.simulate_get(
        "/notifications", query_string="unread=true", headers=reporter["headers"]
    ).json["items"]
    assert [n["id"] for n in unread] == [items[1]["id"]]
    stranger = make_user()
    assert (
        client.simulate_post(f"/notifications/{items[1]['id']}/read", headers=stranger["headers"]).status_code
        == 404
    )
    assert client.simulate_get("/notifications", headers=stranger["headers"]).json["items"] == []
    assert set(items[0]) == {"id", "event", "incident_id", "actor_id", "webhook_id", "read", "created_at"}
    assert items[0]["webhook_id"] is None


def test_notifications_paginate_newest_first(client, reporter, responder, make_incident):
    for _ in range(5):
        client.simulate_post(
            f"/incidents/{make_incident(reporter)['id']}/resolve", headers=responder["headers"]
        )
    first = client.simulate_get("/notifications", query_string="limit=2", headers=reporter["headers"]).json
    second = client.simulate_get(
        "/notifications", query_string=f"limit=2&cursor={first['next_cursor']}", headers=reporter["headers"]
    ).json
    ids = [n["id"] for n in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4


def test_follow_rules_and_lists(client, reporter, responder, make_user, admin):
    fan = make_user()
    url = f"/users/{reporter['id']}"
    for _ in range(2):
        assert client.simulate_post(url + "/follow", headers=fan["headers"]).status_code == 204
    client.simulate_post(url + "/follow", headers=responder["headers"])
    self_follow = client.simulate_post(url + "/follow", headers=reporter["headers"])
    assert (
        self_follow.status_code == 422 and self_follow.headers["content-type"] == "application/problem+json"
    )
    assert client.simulate_post("/users/999/follow", headers=fan["headers"]).status_code == 404
    followers = client.simulate_get(url + "/followers", query_string="limit=1", headers=admin["headers"]).json
    assert [u["id"] for u in followers["items"]] == [min(fan["id"], responder["id"])]
    assert followers["next_cursor"] is not None
    following = client.simulate_get(f"/users/{fan['id']}/following", headers=admin["headers"]).json
    assert [u["username"] for u in following["items"]] == [reporter["username"]]
    for _ in range(2):
        assert client.simulate_delete(url + "/follow", headers=fan["headers"]).status_code == 204
    assert client.simulate_get(f"/users/{fan['id']}/following", headers=fan["headers"]).json["items"] == []
    assert client.simulate_get("/users/999/followers", headers=fan["headers"]).status_code == 404
