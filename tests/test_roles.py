"""Who may do what: every route and method, for each role, is either its 2xx or 403."""

import re

import pytest

from tests.fix_app import PASSWORD

ROLES = ["reporter", "responder", "admin"]
EVERYONE = set(ROLES)
RESPONDERS = {"responder", "admin"}
ADMINS = {"admin"}
NOBODY = set()


def incident_replacement(title, **fields):
    return {
        "title": title,
        "description": "",
        "status": "open",
        "severity": "medium",
        "assignee_id": None,
        "category_ids": [],
        "resolution": None,
        **fields,
    }


# (name, method, path, body, status for the allowed roles, allowed roles); path and body
# are templates over the world built below: "own" is an incident the caller reported,
# "theirs" one another reporter reported, "spare" a user who wrote nothing.
CASES = [
    ("list users", "GET", "/users", None, 200, EVERYONE),
    (
        "create user",
        "POST",
        "/users",
        lambda w: {"username": "newbie", "email": "newbie@example.com", "password": "long enough"},
        201,
        ADMINS,
    ),
    ("read user", "GET", "/users/{spare}", None, 200, EVERYONE),
    ("patch another user", "PATCH", "/users/{spare}", lambda w: {"email": "x@example.com"}, 200, ADMINS),
    (
        "put another user",
        "PUT",
        "/users/{spare}",
        lambda w: {
            "username": w["spare_username"],
            "email": "x@example.com",
            "role": "responder",
            "active": True,
        },
        200,
        ADMINS,
    ),
    ("deactivate another user", "PATCH", "/users/{spare}", lambda w: {"active": False}, 200, ADMINS),
    ("delete another user", "DELETE", "/users/{spare}", None, 204, ADMINS),
    ("patch own email", "PATCH", "/users/{me}", lambda w: {"email": "me@example.com"}, 200, EVERYONE),
    (
        "patch own password",
        "PATCH",
        "/users/{me}",
        lambda w: {"password": "another secret", "current_password": PASSWORD},
        200,
        EVERYONE,
    ),
    (
        "put own email",
        "PUT",
        "/users/{me}",
        lambda w: {
            "username": w["me_username"],
            "email": "me@example.com",
            "role": w["role"],
            "active": True,
        },
        200,
        EVERYONE,
    ),
    (
        "change own role",
        "PATCH",
        "/users/{me}",
        lambda w: {"role": "responder" if w["role"] == "admin" else "admin"},
        200,
        NOBODY,
    ),
    ("deactivate self", "PATCH", "/users/{me}", lambda w: {"active": False}, 200, NOBODY),
    ("delete self", "DELETE", "/users/{me}", None, 204, NOBODY),
    ("user's incidents", "GET", "/users/{spare}/incidents", None, 200, EVERYONE),
    ("follow user", "POST", "/users/{spare}/follow", None, 204, EVERYONE),
    ("unfollow user", "DELETE", "/users/{spare}/follow", None, 204, EVERYONE),
    ("followers", "GET", "/users/{spare}/followers", None, 200, EVERYONE),
    ("following", "GET", "/users/{spare}/following", None, 200, EVERYONE),
    ("list incidents", "GET", "/incidents", None, 200, EVERYONE),
    ("report incident", "POST", "/incidents", lambda w: {"title": "new"}, 201, EVERYONE),
    (
        "report assigned incident",
        "POST",
        "/incidents",
        lambda w: {"title": "new", "assignee_id": w["helper"]},
        201,
        RESPONDERS,
    ),
    ("search incidents", "GET", "/incidents/search?query=disk", None, 200, EVERYONE),
    ("incident stats", "GET", "/incidents/stats", None, 200, EVERYONE),
    ("read incident", "GET", "/incidents/{theirs}", None, 200, EVERYONE),
    ("history", "GET", "/incidents/{theirs}/history", None, 200, EVERYONE),
    ("delete own incident", "DELETE", "/incidents/{own}", None, 204, ADMINS),
    ("delete their incident", "DELETE", "/incidents/{theirs}", None, 204, ADMINS),
    ("put own title", "PUT", "/incidents/{own}", lambda w: incident_replacement("renamed"), 200, EVERYONE),
    (
        "put their incident",
        "PUT",
        "/incidents/{theirs}",
        lambda w: incident_replacement("renamed"),
        200,
        RESPONDERS,
    ),
    (
        "comment on their incident",
        "POST",
        "/incidents/{theirs}/comments",
        lambda w: {"content": "hi"},
        201,
        EVERYONE,
    ),
    ("read comments", "GET", "/incidents/{theirs}/comments", None, 200, EVERYONE),
    ("read comment", "GET", "/incidents/{theirs}/comments/{comment}", None, 200, EVERYONE),
    ("notifications", "GET", "/notifications", None, 200, EVERYONE),
    ("read the change feed", "GET", "/events", None, 200, EVERYONE),
    (
        "send a PagerDuty event",
        "POST",
        "/alerts",
        lambda w: {"event_action": "resolve", "dedup_key": "nothing open"},
        202,
        RESPONDERS,
    ),
    (
        "send an Alertmanager notification",
        "POST",
        "/alerts/alertmanager",
        lambda w: {"version": "4", "groupKey": "{}:{}", "status": "resolved", "alerts": [{"labels": {}}]},
        202,
        RESPONDERS,
    ),
    ("mark own notification read", "POST", "/notifications/{notification}/read", None, 204, EVERYONE),
    ("list categories", "GET", "/categories", None, 200, EVERYONE),
    ("create category", "POST", "/categories", lambda w: {"name": "brand new"}, 201, ADMINS),
    ("read category", "GET", "/categories/{category}", None, 200, EVERYONE),
    ("rename category", "PATCH", "/categories/{category}", lambda w: {"name": "renamed"}, 200, ADMINS),
    ("delete category", "DELETE", "/categories/{category}", None, 204, ADMINS),
    ("category's incidents", "GET", "/categories/{category}/incidents", None, 200, EVERYONE),
    ("list own tokens", "GET", "/auth/tokens", None, 200, EVERYONE),
    ("revoke own token by id", "DELETE", "/auth/tokens/{my_token}", None, 204, EVERYONE),
    ("log out", "DELETE", "/auth/tokens/current", None, 204, EVERYONE),
    ("list webhooks", "GET", "/webhooks", None, 200, ADMINS),
    # NOTE: a public IP literal is checked without any traffic; nothing delivers in this test.
    ("create webhook", "POST", "/webhooks", lambda w: {"url": "http://8.8.8.8/hook"}, 201, ADMINS),
    ("read webhook", "GET", "/webhooks/{webhook}", None, 200, ADMINS),
    ("change webhook", "PATCH", "/webhooks/{webhook}", lambda w: {"description": "chat"}, 200, ADMINS),
    ("delete webhook", "DELETE", "/webhooks/{webhook}", None, 204, ADMINS),
    # its URL is on loopback, which this app may not reach: the ping sends nothing
    ("ping webhook", "POST", "/webhooks/{webhook}/ping", None, 200, ADMINS),
    ("rotate webhook secret", "POST", "/webhooks/{webhook}/rotate-secret", None, 200, ADMINS),
    ("webhook deliveries", "GET", "/webhooks/{webhook}/deliveries", None, 200, ADMINS),
    (
        "redeliver to webhook",
        "POST",
        "/webhooks/{webhook}/redeliver",
        lambda w: {"event_ids": [f"evt_{w['event']}"]},
        202,
        ADMINS,
    ),
]
INCIDENT_EDITS = {
    "title": (lambda w: {"title": "edited"}, EVERYONE, RESPONDERS),
    "description": (lambda w: {"description": "edited"}, EVERYONE, RESPONDERS),
    "status": (lambda w: {"status": "in_progress"}, RESPONDERS, RESPONDERS),
    "severity": (lambda w: {"severity": "critical"}, RESPONDERS, RESPONDERS),
    "assignee": (lambda w: {"assignee_id": w["helper"]}, RESPONDERS, RESPONDERS),
    "categories": (lambda w: {"category_ids": [w["category"]]}, RESPONDERS, RESPONDERS),
}
CASES += [
    (f"patch {field} of {whose} incident", "PATCH", f"/incidents/{{{whose}}}", body, 200, allowed)
    for field, (body, own, theirs) in INCIDENT_EDITS.items()
    for whose, allowed in (("own", own), ("theirs", theirs))
]
CASES += [
    (
        f"resolve {whose} incident",
        "POST",
        f"/incidents/{{{whose}}}/resolve",
        lambda w: {"resolution": "fixed"},
        200,
        RESPONDERS,
    )
    for whose in ("own", "theirs")
]


@pytest.fixture
def world(client, db_conn, queries, make_user, make_incident, make_category):
    def build(role):
        me = make_user(role)
        other = make_user("reporter")
        helper = make_user("responder")
        spare = make_user("reporter")
        client.simulate_post(f"/users/{other['id']}/follow", headers=me["headers"])
        theirs = make_incident(other, title="disk full")
        comment = client.simulate_post(
            f"/incidents/{theirs['id']}/comments", json={"content": "disk"}, headers=other["headers"]
        ).json
        ids = {
            "me": me["id"],
            "spare": spare["id"],
            "helper": helper["id"],
            "theirs": theirs["id"],
            "own": make_incident(me)["id"],
            "comment": comment["id"],
            "category": make_category()["id"],
            "notification": client.simulate_get("/notifications", headers=me["headers"]).json["items"][0][
                "id"
            ],
            "my_token": client.simulate_get("/auth/tokens", headers=me["headers"]).json["items"][0]["id"],
            "event": client.simulate_get("/events", headers=me["headers"]).json["items"][0]["position"],
            "webhook": queries.create_webhook(
                db_conn,
                url="http://127.0.0.1:9/",
                event_types=["incident.created"],
                description=None,
                secret="whsec_QUJD",
            )["id"],
        }
        return me, {**ids, "role": role, "me_username": me["username"], "spare_username": spare["username"]}

    return build


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name, method, path, body, status, allowed", CASES, ids=[case[0] for case in CASES])
def test_role_matrix(client, world, role, name, method, path, body, status, allowed):
    me, w = world(role)
    kwargs = {"json": body(w)} if body else {}
    path, _, query = path.format(**w).partition("?")
    result = client.simulate_request(method, path, query_string=query, headers=me["headers"], **kwargs)
    expected = status if role in allowed else 403
    assert result.status_code == expected, result.text
    if expected == 403:
        assert result.headers["content-type"] == "application/problem+json"
        assert result.json["status"] == 403


def test_the_matrix_covers_every_operation_that_needs_a_token(client):
    paths = client.simulate_get("/openapi.json").json["paths"]
    operations = {
        (method.upper(), path)
        for path, item in paths.items()
        for method, op in item.items()
        if "security" not in op  # the document's own: a user's token (GET /metrics has its own)
    }
    covered = {(method, re.sub(r"\{(\w+)\}", "{}", path.partition("?")[0])) for _, method, path, *_ in CASES}
    assert {(m, p) for m, p in operations if (m, re.sub(r"\{(\w+)\}", "{}", p)) not in covered} == set()


@pytest.mark.parametrize(
    "body",
    [
        {"status": "closed"},
        {"severity": "low"},
        {"title": "mine now"},
        {"description": "x"},
    ],
)
def test_forbidden_incident_edit_changes_nothing(client, world, db_conn, body):
    me, w = world("reporter")
    query = "SELECT title, description, status, severity, version FROM incidents WHERE id = %s"
    before = db_conn.execute(query, [w["theirs"]]).fetchone()
    result = client.simulate_patch(f"/incidents/{w['theirs']}", json=body, headers=me["headers"])
    assert result.status_code == 403
    assert db_conn.execute(query, [w["theirs"]]).fetchone() == before


def test_reporter_reporting_an_assigned_incident_writes_nothing(client, reporter, responder, db_conn):
    result = client.simulate_post(
        "/incidents", json={"title": "t", "assignee_id": responder["id"]}, headers=reporter["headers"]
    )
    assert result.status_code == 403
    assert db_conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"] == 0


def test_reporter_may_send_unchanged_privileged_fields_with_own_edit(client, reporter, make_incident):
    incident = make_incident(reporter, severity="high")
    result = client.simulate_patch(
        f"/incidents/{incident['id']}",
        json={"title": "clearer", "severity": "high", "status": "open"},
        headers=reporter["headers"],
    )
    assert result.status_code == 200 and result.json["title"] == "clearer"


def test_allowed_transitions_reflect_the_role(client, world):
    for role, expected in [
        ("reporter", []),
        ("responder", ["in_progress", "resolved", "closed"]),
        ("admin", ["in_progress", "resolved", "closed"]),
    ]:
        me, w = world(role)
        seen = client.simulate_get(f"/incidents/{w['theirs']}", headers=me["headers"]).json
        assert seen["allowed_transitions"] == expected, role
