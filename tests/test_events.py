"""The change feed, GET /events: one event per committed change, of the right type and shape,
none for a failed request, positions that no reader ever skips, paging by
position, 410 below what retention kept."""

import jsonschema
import pytest

from api.schemas import EVENT_PAGE, event_of

EVENT_KEYS = {"id", "position", "type", "occurred_at", "actor_id", "incident_id", "incident_version", "data"}


def read_feed(client, user, **params):
    result = client.simulate_get("/events", params=params, headers=user["headers"])
    assert result.status_code == 200, result.json
    jsonschema.validate(result.json, EVENT_PAGE)
    return result


def events_after(client, user, cursor):
    """Every event after `cursor`, following next_cursor until a short page; and the last cursor."""
    events = []
    while True:
        page = read_feed(client, user, after=cursor, limit=1000).json
        events += page["items"]
        cursor = page["next_cursor"]
        if len(page["items"]) < 1000:
            return events, cursor


def shown(incident):
    return {name: value for name, value in incident.items() if name != "allowed_transitions"}


class Feed:
    """A reader that checks each write left exactly one event, the incident as GET shows it."""

    def __init__(self, client, user):
        self.client, self.user = client, user
        self.cursor = read_feed(client, user).json["next_cursor"]

    def one_event(self, type_, actor, incident_id):
        events, self.cursor = events_after(self.client, self.user, self.cursor)
        assert [(e["type"], e["actor_id"], e["incident_id"]) for e in events] == [
            (type_, actor["id"], incident_id)
        ]
        event = events[0]
        assert set(event) == EVENT_KEYS
        jsonschema.validate(event, event_of(type_))  # as the OpenAPI document's webhooks describe it
        assert event["id"] == f"evt_{event['position']}"
        assert self.cursor == str(event["position"])
        return event

    def incident_event(self, type_, actor, incident_id):
        """The one event of a change to the incident, checked against GET and its history."""
        event = self.one_event(type_, actor, incident_id)
        now = self.client.simulate_get(f"/incidents/{incident_id}", headers=self.user["headers"]).json
        entry = self.client.simulate_get(
            f"/incidents/{incident_id}/history", headers=self.user["headers"]
        ).json["items"][-1]
        assert event["data"] == {"incident": shown(now), "changes": entry["changes"]}
        assert event["incident_version"] == now["version"]
        assert event["occurred_at"] == entry["created_at"]
        return event


def test_every_kind_of_write_is_one_event_of_its_type(client, admin, responder, make_user, make_category):
    feed = Feed(client, responder)
    helper = make_user("responder")
    category = make_category()
    created = client.simulate_post(
        "/incidents",
        json={"title": "Disk full", "assignee_id": responder["id"], "category_ids": [category["id"]]},
        headers=responder["headers"],
    ).json
    iid = created["id"]
    event = feed.incident_event("incident.created", responder, iid)
    assert event["incident_version"] == 1
    assert event["data"]["incident"]["categories"] == [{"id": category["id"], "name": category["name"]}]

    for body, type_ in [
        ({"title": "Disk full on db-1"}, "incident.updated"),
        ({"status": "in_progress"}, "incident.status_changed"),
        ({"assignee_id": helper["id"]}, "incident.assigned"),
        ({"category_ids": []}, "incident.categorized"),
    ]:
        result = client.simulate_patch(f"/incidents/{iid}", json=body, headers=responder["headers"])
        assert result.status_code == 200, result.json
        feed.incident_event(type_, responder, iid)

    # a replacement that changes three members is one event, of the most specific type
    current = client.simulate_get(f"/incidents/{iid}", headers=responder["headers"]).json
    replacement = {
        **{name: current[name] for name in ("title", "assignee_id", "resolution")},
        "category_ids": [c["id"] for c in current["categories"]],
        "description": "db-1 /var at 100 %",
        "severity": "critical",
        "status": "open",
    }
    result = client.simulate_put(f"/incidents/{iid}", json=replacement, headers=responder["headers"])
    assert result.status_code == 200, result.json
    event = feed.incident_event("incident.status_changed", responder, iid)
    assert set(event["data"]["changes"]) == {"description", "severity", "status"}

    client.simulate_post(
        f"/incidents/{iid}/resolve", json={"resolution": "pruned logs"}, headers=responder["headers"]
    )
    resolved = feed.incident_event("incident.resolved", responder, iid)

    comment = client.simulate_post(
        f"/incidents/{iid}/comments", json={"content": "it was the logs"}, headers=admin["headers"]
    ).json
    event = feed.one_event("comment.created", admin, iid)
    incident = client.simulate_get(f"/incidents/{iid}", headers=admin["headers"]).json
    assert event["data"] == {"incident": shown(incident), "comment": comment}
    assert event["incident_version"] == resolved["incident_version"]  # a comment is no new version

    client.simulate_patch(f"/incidents/{iid}", json={"status": "open"}, headers=responder["headers"])
    feed.incident_event("incident.status_changed", responder, iid)
    assert client.simulate_delete(f"/users/{helper['id']}", headers=admin["headers"]).status_code == 204
    event = feed.incident_event("incident.assigned", admin, iid)
    assert event["data"]["changes"] == {"assignee_id": [helper["id"], None]}

    last = client.simulate_get(f"/incidents/{iid}", headers=admin["headers"]).json
    assert client.simulate_delete(f"/incidents/{iid}", headers=admin["headers"]).status_code == 204
    event = feed.one_event("incident.deleted", admin, iid)
    assert event["data"] == {"incident": shown(last)}
    assert event["incident_version"] == last["version"] + 1  # the deletion counts as a change


def test_a_failed_request_leaves_no_event(client, db_conn, admin, responder, reporter, make_incident):
    theirs = make_incident(responder)
    closed = make_incident(responder, assignee_id=responder["id"])
    client.simulate_patch(
        f"/incidents/{closed['id']}", json={"status": "closed"}, headers=responder["headers"]
    )
    before = db_conn.execute(
        "SELECT (SELECT max(position) FROM events) AS last, (SELECT count(*) FROM events) AS events"
    ).fetchone()
    failures = [
        ("PATCH", f"/incidents/{theirs['id']}", {"title": "mine now"}, reporter, {}, 403),
        ("PATCH", f"/incidents/{closed['id']}", {"status": "resolved"}, responder, {}, 409),
        ("PATCH", f"/incidents/{theirs['id']}", {"title": "stale"}, responder, {"If-Match": '"0"'}, 412),
        (
            "POST",
            "/incidents",
            {"title": "with no such category", "category_ids": [999999]},
            responder,
            {},
            422,
        ),
        ("PATCH", f"/incidents/{theirs['id']}", {"category_ids": [999999]}, responder, {}, 422),
        ("PUT", f"/incidents/{theirs['id']}", {"title": "half a body"}, responder, {}, 422),
        # unassigns the responder's incident, then finds they reported incidents: all undone
        ("DELETE", f"/users/{responder['id']}", None, admin, {}, 409),
    ]
    for method, path, body, user, headers, status in failures:
        result = client.simulate_request(method, path, json=body, headers={**user["headers"], **headers})
        assert result.status_code == status, (method, path, result.json)
    after = db_conn.execute(
        "SELECT (SELECT max(position) FROM events) AS last, (SELECT count(*) FROM events) AS events"
    ).fetchone()
    assert after == before
    assert (
        client.simulate_get(f"/incidents/{closed['id']}", headers=admin["headers"]).json["assignee_id"]
        == (responder["id"])
    )


def test_a_replayed_request_writes_no_second_event(client, reporter, make_incident):
    incident = make_incident(reporter)
    cursor = read_feed(client, reporter).json["next_cursor"]
    headers = {**reporter["headers"], "Idempotency-Key": "comment-once"}
    for _ in range(2):
        result = client.simulate_post(
            f"/incidents/{incident['id']}/comments", json={"content": "once"}, headers=headers
        )
        assert result.status_code == 201
    events, _ = events_after(client, reporter, cursor)
    assert [e["type"] for e in events] == ["comment.created"]


def test_pages_follow_positions_with_limit_link_and_filters(client, reporter, responder, make_incident):
    start = read_feed(client, reporter).json["next_cursor"]
    first, second = make_incident(reporter), make_incident(reporter)
    client.simulate_post(
        f"/incidents/{first['id']}/comments", json={"content": "x"}, headers=reporter["headers"]
    )
    client.simulate_patch(
        f"/incidents/{second['id']}", json={"severity": "high"}, headers=responder["headers"]
    )
    everything, end = events_after(client, reporter, start)
    positions = [e["position"] for e in everything]
    assert len(positions) == 4 and positions == sorted(positions) and int(end) == positions[-1]

    page = read_feed(client, reporter, after=start, limit=3)
    assert [e["position"] for e in page.json["items"]] == positions[:3]
    assert page.json["next_cursor"] == str(positions[2])
    assert (
        page.headers["Link"]
        == f'<http://falconframework.org/events?after={positions[2]}&limit=3>; rel="next"'
    )
    rest = read_feed(client, reporter, after=page.json["next_cursor"], limit=3)
    assert [e["position"] for e in rest.json["items"]] == positions[3:]
    assert "Link" not in rest.headers

    idle = read_feed(client, reporter, after=end)
    assert idle.json == {"items": [], "next_cursor": end} and "Link" not in idle.headers

    typed = read_feed(client, reporter, after=start, types="comment.created,incident.updated").json
    assert [e["type"] for e in typed["items"]] == ["comment.created", "incident.updated"]
    one = read_feed(client, reporter, after=start, incident_id=second["id"]).json
    assert [e["type"] for e in one["items"]] == ["incident.created", "incident.updated"]
    assert read_feed(client, reporter, after=end, incident_id=first["id"]).json["next_cursor"] == end


def prune_through(db_conn, position):
    """What the retention job does: deletes the events up to `position` and records it."""
    db_conn.execute("DELETE FROM events WHERE position <= %s", [position])
    db_conn.execute("UPDATE events_pruned SET through_position = %s", [position])


def test_without_after_the_feed_starts_at_the_oldest_kept_event(client, db_conn, reporter, make_incident):
    for _ in range(3):
        make_incident(reporter)
    positions = [r["position"] for r in db_conn.execute("SELECT position FROM events ORDER BY position")]
    prune_through(db_conn, positions[0])
    page = read_feed(client, reporter).json
    assert [e["position"] for e in page["items"]] == positions[1:]
    assert page["next_cursor"] == str(positions[2])


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("after=-1", "after"),
        ("after=evt_3", "after"),
        ("types=incident.commented", "types"),
        ("incident_id=0", "incident_id"),
        ("cursor=abc", "cursor"),
        ("after=1&after=2", "after"),
    ],
)
def test_a_bad_parameter_is_400_naming_it(client, reporter, query, parameter):
    result = client.simulate_get("/events", query_string=query, headers=reporter["headers"])
    assert result.status_code == 400
    assert result.headers["Content-Type"] == "application/problem+json"
    assert result.json["errors"][0]["parameter"] == parameter


def test_the_feed_needs_a_token(client):
    result = client.simulate_get("/events")
    assert result.status_code == 401
    assert result.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_cursor_below_the_pruned_events_is_410(client, db_conn, reporter, make_incident):
    for _ in range(4):
        make_incident(reporter)
    positions = [r["position"] for r in db_conn.execute("SELECT position FROM events ORDER BY position")]
    prune_through(db_conn, positions[1])
    gone = client.simulate_get("/events", params={"after": positions[1] - 1}, headers=reporter["headers"])
    assert gone.status_code == 410
    assert gone.headers["Content-Type"] == "application/problem+json"
    assert gone.json["title"] == "Events pruned" and "pruned" in gone.json["detail"]
    kept = read_feed(client, reporter, after=positions[1]).json
    assert [e["position"] for e in kept["items"]] == positions[2:]

    prune_through(db_conn, positions[3])  # everything: a reader that saw it all goes on
    assert (
        client.simulate_get(
            "/events", params={"after": positions[2]}, headers=reporter["headers"]
        ).status_code
        == 410
    )
    assert read_feed(client, reporter, after=positions[3]).json == {
        "items": [],
        "next_cursor": str(positions[3]),
    }
    assert read_feed(client, reporter).json == {"items": [], "next_cursor": str(positions[3])}
    make_incident(reporter)
    assert len(read_feed(client, reporter, after=positions[3]).json["items"]) == 1
