import statistics
import time
import urllib.parse

import pytest

from api.auth import hash_password
from tests.fix_app import PASSWORD
from tests.fix_server import row_locked

USER_KEYS = {"id", "username", "email", "role", "active", "created_at", "updated_at"}
NEW_PASSWORD = "a brand new secret"


def login(client, username, password):
    return client.simulate_post("/auth/tokens", json={"username": username, "password": password})


def new_user(**fields):
    return {"username": "ana", "email": "ana@example.com", "password": PASSWORD, **fields}


def row_of(db_conn, user_id):
    return db_conn.execute(
        "SELECT username, email, role::text, active, password_hash, updated_at FROM users WHERE id = %s",
        [user_id],
    ).fetchone()


def user_count(db_conn):
    return db_conn.execute("SELECT count(*) AS n FROM users").fetchone()["n"]


def assert_problem(result, status, pointers=None):
    assert result.status_code == status, result.text
    assert result.headers["content-type"] == "application/problem+json"
    assert result.json["status"] == status
    if pointers is not None:
        assert {e["pointer"] for e in result.json["errors"]} == pointers


def replacement(user, **fields):
    return {
        "username": user["username"],
        "email": user["email"],
        "role": user["role"],
        "active": user["active"],
        **fields,
    }


# POST /users


def test_admin_creates_user_with_defaults(client, admin, db_conn):
    result = client.simulate_post("/users", json=new_user(), headers=admin["headers"])
    assert result.status_code == 201
    body = result.json
    assert result.headers["location"] == f"/users/{body['id']}"
    assert set(body) == USER_KEYS
    assert (body["username"], body["email"], body["role"], body["active"]) == (
        "ana",
        "ana@example.com",
        "reporter",
        True,
    )
    assert body["created_at"].endswith("+00:00")
    row = row_of(db_conn, body["id"])
    assert row["password_hash"].startswith("$argon2") and PASSWORD not in row["password_hash"]
    assert login(client, "ana", PASSWORD).status_code == 201


def test_admin_creates_user_with_role_and_inactive(client, admin, db_conn):
    result = client.simulate_post(
        "/users", json=new_user(role="responder", active=False), headers=admin["headers"]
    )
    assert result.status_code == 201
    assert (result.json["role"], result.json["active"]) == ("responder", False)
    row = row_of(db_conn, result.json["id"])
    assert (row["role"], row["active"]) == ("responder", False)


@pytest.mark.parametrize("field, value", [("username", "ALICE"), ("email", "Alice@EXAMPLE.com")])
def test_create_with_taken_username_or_email_is_409_case_insensitively(
    client, admin, make_user, db_conn, field, value
):
    make_user(username="alice", email="alice@example.com")
    result = client.simulate_post("/users", json=new_user(**{field: value}), headers=admin["headers"])
    assert_problem(result, 409, {f"#/{field}"})
    assert user_count(db_conn) == 2


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_read_only_and_unknown_members_are_422_each_with_a_pointer(client, admin, reporter, db_conn, method):
    before = row_of(db_conn, reporter["id"])
    extra = {
        "id": 99,
        "created_at": "2020-01-01T00:00:00+00:00",
        "updated_at": "2020-01-01T00:00:00+00:00",
        "password_hash": "$argon2id$forged",
        "is_admin": True,
    }
    body = {**replacement(reporter), "password": PASSWORD, **extra}
    path = "/users" if method == "POST" else f"/users/{reporter['id']}"
    result = client.simulate_request(method, path, json=body, headers=admin["headers"])
    assert_problem(result, 422, {f"#/{name}" for name in extra})
    assert row_of(db_conn, reporter["id"]) == before
    assert user_count(db_conn) == 2


def test_all_bad_fields_are_listed_at_once(client, admin, db_conn):
    body = {"username": "a b", "email": "not-an-email", "password": "short", "role": "root", "active": "yes"}
    result = client.simulate_post("/users", json=body, headers=admin["headers"])
    assert_problem(result, 422, {"#/username", "#/email", "#/password", "#/role", "#/active"})
    assert user_count(db_conn) == 1


@pytest.mark.parametrize(
    "field, value",
    [
        ("username", "ab"),
        ("username", "a" * 51),
        ("username", "has space"),
        ("username", "slash/y"),
        ("username", "ünïcode"),
        ("username", "trailing\n"),
        ("username", 123),
        ("email", "no-at-sign"),
        ("email", "two@@example.com"),
        ("email", "sp ace@example.com"),
        ("email", ""),
        ("email", "a@" + "b" * 253),
        ("password", "7chars!"),
        ("password", "x" * 129),
        ("password", None),
        ("role", "superuser"),
        ("active", "true"),
    ],
)
def test_invalid_field_is_422(client, admin, db_conn, field, value):
    result = client.simulate_post("/users", json=new_user(**{field: value}), headers=admin["headers"])
    assert_problem(result, 422, {f"#/{field}"})
    assert user_count(db_conn) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"username": "abc"},
        {"username": "a" * 50},
        {"username": "A.b-c_9"},
        {"password": "x" * 8},
        {"password": "x" * 128},
    ],
)
def test_boundary_values_are_accepted(client, admin, fields):
    result = client.simulate_post("/users", json=new_user(**fields), headers=admin["headers"])
    assert result.status_code == 201
    assert login(client, result.json["username"], fields.get("password", PASSWORD)).status_code == 201


def test_create_requires_username_email_password(client, admin):
    result = client.simulate_post("/users", json={"role": "admin"}, headers=admin["headers"])
    assert_problem(result, 422, {"#/username", "#/email", "#/password"})


@pytest.mark.parametrize(
    "body, content_type, status",
    [
        ('{"username": ', "application/json", 400),
        ("username=ana", "application/x-www-form-urlencoded", 415),
        ('{"username": "ana"}', "application/merge-patch+json", 415),
    ],
)
def test_create_with_malformed_or_non_json_body(client, admin, body, content_type, status):
    result = client.simulate_post(
        "/users", body=body, headers={**admin["headers"], "Content-Type": content_type}
    )
    assert_problem(result, status)


# GET /users/{id}


def test_any_user_reads_any_user(client, reporter, admin):
    result = client.simulate_get(f"/users/{admin['id']}", headers=reporter["headers"])
    assert result.status_code == 200
    assert set(result.json) == USER_KEYS
    assert (result.json["username"], result.json["role"]) == (admin["username"], "admin")


@pytest.mark.parametrize("path", ["/users/999999", "/users/0", "/users/abc", "/users/9223372036854775808"])
def test_missing_or_non_integer_user_is_404(client, reporter, path):
    assert_problem(client.simulate_get(path, headers=reporter["headers"]), 404)


# PATCH and PUT /users/{id}


def test_user_changes_own_email(client, reporter, db_conn):
    before = row_of(db_conn, reporter["id"])
    result = client.simulate_patch(
        f"/users/{reporter['id']}", json={"email": "new@example.com"}, headers=reporter["headers"]
    )
    assert result.status_code == 200
    assert set(result.json) == USER_KEYS and result.json["email"] == "new@example.com"
    after = row_of(db_conn, reporter["id"])
    assert after["email"] == "new@example.com" and after["updated_at"] > before["updated_at"]
    assert after["password_hash"] == before["password_hash"]


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_user_changes_own_password_then_logs_in_with_it(client, responder, db_conn, method):
    body = {"password": NEW_PASSWORD, "current_password": PASSWORD}
    if method == "PUT":
        body = {**replacement(responder), **body}
    result = client.simulate_request(
        method, f"/users/{responder['id']}", json=body, headers=responder["headers"]
    )
    assert result.status_code == 200
    assert set(result.json) == USER_KEYS
    assert NEW_PASSWORD not in row_of(db_conn, responder["id"])["password_hash"]
    assert login(client, responder["username"], NEW_PASSWORD).status_code == 201
    assert login(client, responder["username"], PASSWORD).status_code == 401


def seconds_taken(action):
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def test_a_reporter_setting_another_users_password_is_403_without_hashing_or_locking(
    client, database_url, db_conn, admin, reporter
):
    argon2_seconds = min(seconds_taken(lambda: hash_password(NEW_PASSWORD)) for _ in range(3))
    before = row_of(db_conn, admin["id"])
    durations = []
    with row_locked(database_url, "users", admin["id"]):  # a request that locked the row would wait
        for _ in range(5):
            started = time.perf_counter()
            result = client.simulate_patch(
                f"/users/{admin['id']}", json={"password": NEW_PASSWORD}, headers=reporter["headers"]
            )
            durations.append(time.perf_counter() - started)
            assert_problem(result, 403)
    assert statistics.median(durations) < argon2_seconds / 3, (durations, argon2_seconds)
    assert row_of(db_conn, admin["id"]) == before


@pytest.mark.parametrize("role", ["reporter", "responder"])
@pytest.mark.parametrize("fields", [{"username": "renamed"}, {"role": "admin"}, {"active": False}])
def test_non_admin_may_not_change_own_username_role_or_active(client, make_user, db_conn, role, fields):
    user = make_user(role)
    before = row_of(db_conn, user["id"])
    result = client.simulate_patch(f"/users/{user['id']}", json=fields, headers=user["headers"])
    assert_problem(result, 403)
    assert row_of(db_conn, user["id"]) == before


@pytest.mark.parametrize("fields", [{"role": "reporter"}, {"active": False}])
def test_admin_may_not_change_own_role_or_active(client, admin, db_conn, fields):
    for method, body in [("PATCH", fields), ("PUT", replacement(admin, **fields))]:
        result = client.simulate_request(method, f"/users/{admin['id']}", json=body, headers=admin["headers"])
        assert_problem(result, 403)
    assert (row_of(db_conn, admin["id"])["role"], row_of(db_conn, admin["id"])["active"]) == ("admin", True)


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_non_admin_may_not_edit_another_user(client, make_user, reporter, db_conn, method):
    other = make_user("reporter")
    before = row_of(db_conn, other["id"])
    body = {"email": "hijack@example.com", "password": NEW_PASSWORD}
    if method == "PUT":
        body = {**replacement(other), **body}
    result = client.simulate_request(method, f"/users/{other['id']}", json=body, headers=reporter["headers"])
    assert_problem(result, 403)
    assert row_of(db_conn, other["id"]) == before


def test_admin_patches_any_member_of_another_user(client, admin, reporter, db_conn):
    body = {
        "username": "renamed",
        "email": "renamed@example.com",
        "role": "responder",
        "active": False,
        "password": NEW_PASSWORD,
    }
    result = client.simulate_patch(f"/users/{reporter['id']}", json=body, headers=admin["headers"])
    assert result.status_code == 200
    assert {k: result.json[k] for k in ("username", "email", "role", "active")} == {
        "username": "renamed",
        "email": "renamed@example.com",
        "role": "responder",
        "active": False,
    }
    row = row_of(db_conn, reporter["id"])
    assert (row["username"], row["email"], row["role"], row["active"]) == (
        "renamed",
        "renamed@example.com",
        "responder",
        False,
    )


def test_admin_puts_another_user_keeping_the_password_when_omitted(client, admin, reporter, db_conn):
    before = row_of(db_conn, reporter["id"])
    body = {"username": "replaced", "email": "replaced@example.com", "role": "responder", "active": True}
    result = client.simulate_put(f"/users/{reporter['id']}", json=body, headers=admin["headers"])
    assert result.status_code == 200
    assert {k: result.json[k] for k in body} == body
    assert row_of(db_conn, reporter["id"])["password_hash"] == before["password_hash"]
    assert login(client, "replaced", PASSWORD).status_code == 201


def test_put_requires_username_email_role_active(client, admin, reporter):
    result = client.simulate_put(
        f"/users/{reporter['id']}", json={"password": NEW_PASSWORD}, headers=admin["headers"]
    )
    assert_problem(result, 422, {"#/username", "#/email", "#/role", "#/active"})


def test_patch_lists_every_bad_field(client, reporter):
    result = client.simulate_patch(
        f"/users/{reporter['id']}", json={"email": "x", "password": "1"}, headers=reporter["headers"]
    )
    assert_problem(result, 422, {"#/email", "#/password"})


@pytest.mark.parametrize("field, value", [("username", "Alice"), ("email", "ALICE@example.com")])
def test_update_to_a_taken_username_or_email_is_409(client, admin, make_user, db_conn, field, value):
    make_user(username="alice", email="alice@example.com")
    other = make_user()
    before = row_of(db_conn, other["id"])
    result = client.simulate_patch(f"/users/{other['id']}", json={field: value}, headers=admin["headers"])
    assert_problem(result, 409, {f"#/{field}"})
    assert row_of(db_conn, other["id"]) == before


def test_changing_only_the_case_of_own_email_is_allowed(client, reporter):
    result = client.simulate_patch(
        f"/users/{reporter['id']}", json={"email": reporter["email"].upper()}, headers=reporter["headers"]
    )
    assert result.status_code == 200 and result.json["email"] == reporter["email"].upper()


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_of_missing_user_is_404(client, admin, method):
    body = {"username": "ghost", "email": "ghost@example.com", "role": "reporter", "active": True}
    assert_problem(client.simulate_request(method, "/users/999999", json=body, headers=admin["headers"]), 404)


def test_deactivated_user_loses_access_and_cannot_be_assigned(
    client, admin, responder, reporter, make_incident
):
    result = client.simulate_patch(
        f"/users/{responder['id']}", json={"active": False}, headers=admin["headers"]
    )
    assert result.status_code == 200 and result.json["active"] is False
    assert client.simulate_get("/users", headers=responder["headers"]).status_code == 401
    assert login(client, responder["username"], PASSWORD).status_code == 401
    incident = make_incident(reporter)
    assigned = client.simulate_patch(
        f"/incidents/{incident['id']}", json={"assignee_id": responder["id"]}, headers=admin["headers"]
    )
    assert_problem(assigned, 422, {"#/assignee_id"})
    client.simulate_patch(f"/users/{responder['id']}", json={"active": True}, headers=admin["headers"])
    assert client.simulate_get("/users", headers=responder["headers"]).status_code == 401  # revoked for good
    assert login(client, responder["username"], PASSWORD).status_code == 201


# DELETE /users/{id}


def test_admin_deletes_a_user_and_their_tokens(client, admin, reporter, db_conn):
    result = client.simulate_delete(f"/users/{reporter['id']}", headers=admin["headers"])
    assert result.status_code == 204 and result.text == ""
    assert_problem(client.simulate_get(f"/users/{reporter['id']}", headers=admin["headers"]), 404)
    assert client.simulate_get("/users", headers=reporter["headers"]).status_code == 401
    assert (
        db_conn.execute(
            "SELECT count(*) AS n FROM api_tokens WHERE user_id = %s", [reporter["id"]]
        ).fetchone()["n"]
        == 0
    )
    assert_problem(client.simulate_delete(f"/users/{reporter['id']}", headers=admin["headers"]), 404)


@pytest.mark.parametrize("role", ["reporter", "responder"])
def test_only_admins_delete_users(client, make_user, reporter, db_conn, role):
    caller = make_user(role)
    assert_problem(client.simulate_delete(f"/users/{reporter['id']}", headers=caller["headers"]), 403)
    assert row_of(db_conn, reporter["id"]) is not None


def test_admin_cannot_delete_themselves(client, admin, db_conn):
    assert_problem(client.simulate_delete(f"/users/{admin['id']}", headers=admin["headers"]), 403)
    assert row_of(db_conn, admin["id"]) is not None


@pytest.mark.parametrize("authored", ["incident", "comment"])
def test_user_who_reported_or_commented_cannot_be_deleted(
    client, admin, reporter, responder, make_incident, db_conn, authored
):
    if authored == "incident":
        make_incident(reporter)
    else:
        incident = make_incident(responder)
        client.simulate_post(
            f"/incidents/{incident['id']}/comments", json={"content": "seen"}, headers=reporter["headers"]
        )
    result = client.simulate_delete(f"/users/{reporter['id']}", headers=admin["headers"])
    assert_problem(result, 409)
    assert row_of(db_conn, reporter["id"]) is not None
    counts = db_conn.execute(
        "SELECT (SELECT count(*) FROM incidents) AS incidents, (SELECT count(*) FROM comments) AS comments"
    ).fetchone()
    assert counts == {"incidents": 1, "comments": int(authored == "comment")}


def test_deleting_an_assignee_unassigns_their_incidents(
    client, admin, reporter, responder, make_incident, db_conn
):
    incident = make_incident(admin, assignee_id=responder["id"])
    assert client.simulate_delete(f"/users/{responder['id']}", headers=admin["headers"]).status_code == 204
    after = client.simulate_get(f"/incidents/{incident['id']}", headers=admin["headers"])
    assert after.status_code == 200 and after.json["assignee_id"] is None
    assert (
        after.json["version"] == incident["version"] + 1
        and after.headers["etag"] != f'"{incident["version"]}"'
    )
    history = client.simulate_get(f"/incidents/{incident['id']}/history", headers=admin["headers"]).json
    assert [(e["action"], e["actor_id"], e["changes"]) for e in history["items"]][-1] == (
        "assigned",
        admin["id"],
        {"assignee_id": [responder["id"], None]},
    )
    untouched = make_incident(admin)
    assert client.simulate_get(f"/incidents/{untouched['id']}", headers=admin["headers"]).json["version"] == 1


# GET /users


def test_list_users_is_paginated_by_keyset(client, make_user, reporter):
    ids = [reporter["id"]] + [make_user()["id"] for _ in range(4)]
    seen, url, pages = [], "/users?limit=2", 0
    while url:
        parts = urllib.parse.urlsplit(url)
        result = client.simulate_get(parts.path, query_string=parts.query, headers=reporter["headers"])
        assert result.status_code == 200
        body, pages = result.json, pages + 1
        assert all(set(user) == USER_KEYS for user in body["items"])
        seen += [user["id"] for user in body["items"]]
        link = result.headers.get("link")
        if body["next_cursor"]:
            assert link and link.endswith('>; rel="next"') and body["next_cursor"] in link
            url = link[1 : link.index(">")]
        else:
            assert link is None
            url = None
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    assert pages == 3


def test_list_users_default_page(client, reporter):
    body = client.simulate_get("/users", headers=reporter["headers"]).json
    assert body["next_cursor"] is None
    assert [user["id"] for user in body["items"]] == [reporter["id"]]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("role=responder", {"responder", "inactive responder"}),
        ("active=false", {"inactive responder", "inactive reporter"}),
        ("role=responder&active=true", {"responder"}),
        ("role=admin&active=false", set()),
        ("active=true", {"reporter", "responder", "admin"}),
    ],
)
def test_list_users_filters_by_role_and_active(client, make_user, query, expected):
    people = {
        "reporter": make_user("reporter"),
        "responder": make_user("responder"),
        "admin": make_user("admin"),
        "inactive responder": make_user("responder", active=False),
        "inactive reporter": make_user("reporter", active=False),
    }
    by_id = {user["id"]: name for name, user in people.items()}
    result = client.simulate_get("/users", query_string=query, headers=people["reporter"]["headers"])
    assert result.status_code == 200
    assert {by_id[user["id"]] for user in result.json["items"]} == expected


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("role=root", "role"),
        ("active=yes", "active"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("sort=username", "sort"),
        ("role=admin&role=reporter", "role"),
    ],
)
def test_list_users_rejects_bad_query_parameters(client, reporter, query, parameter):
    result = client.simulate_get("/users", query_string=query, headers=reporter["headers"])
    assert_problem(result, 400)
    assert [e["parameter"] for e in result.json["errors"]] == [parameter]


@pytest.mark.parametrize("method, path", [("DELETE", "/users"), ("PUT", "/users"), ("POST", "/users/1")])
def test_unsupported_methods_are_405_with_allow(client, admin, method, path):
    result = client.simulate_request(method, path, headers=admin["headers"])
    assert result.status_code == 405
    assert "GET" in result.headers["allow"]
