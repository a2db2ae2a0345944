import hashlib
import os
import pathlib
import re
import subprocess
import sys

import pytest

from tests.fix_app import PASSWORD

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOKEN = re.compile(r"inc_[A-Za-z0-9_-]+")
USER_KEYS = {"id", "username", "email", "role", "active", "created_at", "updated_at"}


def login(client, username, password=PASSWORD):
    return client.simulate_post("/auth/tokens", json={"username": username, "password": password})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(result):
    assert result.status_code == 401
    assert result.headers["www-authenticate"].startswith("Bearer")
    assert result.headers["content-type"] == "application/problem+json"
    assert result.json["status"] == 401


def create_admin(database_url, *args):
    return subprocess.run(
        [sys.executable, "-m", "api", "create-admin", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_login_returns_201_with_token_user_and_location(client, responder):
    result = login(client, responder["username"])
    assert result.status_code == 201
    assert result.headers["location"] == "/auth/tokens/current"
    token, user = result.json["token"], result.json["user"]
    assert token.startswith("inc_") and len(token) >= 40
    assert set(user) == USER_KEYS
    assert (user["id"], user["username"], user["role"], user["active"]) == (
        responder["id"],
        responder["username"],
        "responder",
        True,
    )
    assert client.simulate_get(f"/users/{user['id']}", headers=bearer(token)).status_code == 200


def test_each_login_gives_a_new_token(client, reporter):
    first, second = (login(client, reporter["username"]).json["token"] for _ in range(2))
    assert first != second


def test_token_is_stored_only_as_its_sha256(client, reporter, db_conn):
    token = login(client, reporter["username"]).json["token"]
    digest = hashlib.sha256(token.encode()).digest()
    row = db_conn.execute(
        "SELECT token_hash, user_id FROM api_tokens WHERE token_hash = %s", [digest]
    ).fetchone()
    assert row == {"token_hash": digest, "user_id": reporter["id"]}
    assert db_conn.execute("SELECT bool_and(octet_length(token_hash) = 32) AS ok FROM api_tokens").fetchone()[
        "ok"
    ]
    for table in ("api_tokens", "users"):
        leaks = db_conn.execute(
            f"SELECT count(*) AS n FROM {table} t WHERE strpos(t::text, %(t)s) > 0 "
            f"OR strpos(t::text, encode(convert_to(%(t)s, 'UTF8'), 'hex')) > 0",
            {"t": token},
        ).fetchone()
        assert leaks["n"] == 0, table


def test_logout_revokes_only_the_token_used(client, reporter, db_conn):
    token = login(client, reporter["username"]).json["token"]
    result = client.simulate_delete("/auth/tokens/current", headers=bearer(token))
    assert result.status_code == 204
    assert_unauthorized(client.simulate_get("/users", headers=bearer(token)))
    assert_unauthorized(client.simulate_delete("/auth/tokens/current", headers=bearer(token)))
    assert client.simulate_get("/users", headers=reporter["headers"]).status_code == 200
    digest = hashlib.sha256(token.encode()).digest()
    assert (
        db_conn.execute("SELECT count(*) AS n FROM api_tokens WHERE token_hash = %s", [digest]).fetchone()[
            "n"
        ]
        == 0
    )


def test_bearer_scheme_is_case_insensitive(client, reporter):
    headers = {"Authorization": f"bearer {reporter['token']}"}
    assert client.simulate_get("/users", headers=headers).status_code == 200


def revoke(client, user):
    client.simulate_delete("/auth/tokens/current", headers=user["headers"])


def deactivate(db_conn, user):
    db_conn.execute("UPDATE users SET active = false WHERE id = %s", [user["id"]])


def delete(db_conn, user):
    db_conn.execute("DELETE FROM users WHERE id = %s", [user["id"]])


@pytest.mark.parametrize(
    "authorization, spoil",
    [
        (None, None),
        ("Basic dXNlcjpwYXNzd29yZA==", None),
        ("Bearer", None),
        ("Bearer    ", None),
        ("{token}", None),
        ("Token {token}", None),
        ("Bearer inc_thisTokenWasNeverIssuedToAnyoneAtAll0000000", None),
        ("Bearer {token}x", None),
        ("Bearer {token}", revoke),
        ("Bearer {token}", deactivate),
        ("Bearer {token}", delete),
    ],
    ids=[
        "missing",
        "basic",
        "bearer-without-token",
        "bearer-blank",
        "no-scheme",
        "other-scheme",
        "unknown",
        "altered",
        "revoked",
        "deactivated-user",
        "deleted-user",
    ],
)
@pytest.mark.parametrize(
    "method, path", [("GET", "/users"), ("GET", "/incidents/{incident}"), ("POST", "/incidents")]
)  # the latter two check the token in their own query
def test_bad_credentials_are_401_with_www_authenticate(
    client, db_conn, reporter, admin, make_incident, authorization, spoil, method, path
):
    incident = make_incident(admin)
    if spoil is revoke:
        spoil(client, reporter)
    elif spoil:
        spoil(db_conn, reporter)
    headers = {"Authorization": authorization.format(token=reporter["token"])} if authorization else {}
    body = {"title": "t"} if method == "POST" else None
    assert_unauthorized(
        client.simulate_request(method, path.format(incident=incident["id"]), headers=headers, json=body)
    )
    assert db_conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"] == 1


@pytest.mark.parametrize(
    "method, path, request_fault",
    [
        ("POST", "/incidents", {"json": {}}),  # no title
        ("POST", "/incidents", {"body": "{", "headers": {"Content-Type": "application/json"}}),
        ("POST", "/incidents", {"json": {"title": "t"}, "params": {"unknown": "1"}}),
        ("GET", "/incidents", {"params": {"sort": "bogus"}}),
        ("GET", "/incidents/1", {"params": {"unknown": "1"}}),
    ],
)
def test_a_bad_token_is_401_whatever_else_is_wrong_with_the_request(
    client, db_conn, method, path, request_fault
):
    """Also where the responder's own query checks the token: a stranger learns nothing of the
    request's other checks."""
    bad = {"Authorization": "Bearer inc_thisTokenWasNeverIssuedToAnyoneAtAll0000000"}
    fault = {**request_fault, "headers": {**request_fault.get("headers", {}), **bad}}
    assert_unauthorized(client.simulate_request(method, path, **fault))
    assert db_conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"] == 0


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/users"),
        ("POST", "/users"),
        ("GET", "/users/1"),
        ("PATCH", "/users/1"),
        ("DELETE", "/users/1"),
        ("GET", "/incidents"),
        ("POST", "/incidents"),
        ("GET", "/incidents/1"),
        ("GET", "/categories"),
        ("DELETE", "/auth/tokens/current"),
    ],
)
def test_every_route_needs_a_token_and_writes_nothing_without_one(client, db_conn, reporter, method, path):
    result = client.simulate_request(method, path, json={"title": "x", "username": "x"})
    assert_unauthorized(result)
    counts = db_conn.execute(
        "SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM incidents) AS incidents"
    ).fetchone()
    assert counts == {"users": 1, "incidents": 0}


def test_deactivated_user_cannot_log_in_and_reactivation_brings_no_token_back(client, admin, reporter):
    user = f"/users/{reporter['id']}"
    assert client.simulate_patch(user, json={"active": False}, headers=admin["headers"]).status_code == 200
    assert_unauthorized(login(client, reporter["username"]))
    assert client.simulate_patch(user, json={"active": True}, headers=admin["headers"]).status_code == 200
    assert_unauthorized(client.simulate_get("/users", headers=reporter["headers"]))
    assert login(client, reporter["username"]).status_code == 201


def test_failed_logins_get_the_identical_401(client, db_conn, make_user):
    known, passwordless, inactive = make_user(), make_user(), make_user(active=False)
    db_conn.execute("UPDATE users SET password_hash = NULL WHERE id = %s", [passwordless["id"]])
    attempts = [
        login(client, known["username"], "wrong password!"),
        login(client, "nobody-by-this-name"),
        login(client, passwordless["username"]),
        login(client, inactive["username"]),
    ]
    answers = {
        (r.status_code, r.headers["www-authenticate"], r.headers["content-type"], r.text) for r in attempts
    }
    assert len(answers) == 1
    assert_unauthorized(attempts[0])
    assert db_conn.execute("SELECT count(*) AS n FROM api_tokens").fetchone()["n"] == 3


@pytest.mark.parametrize(
    "body, pointers",
    [
        ({}, {"#/username", "#/password"}),
        ({"username": "a"}, {"#/password"}),
        ({"username": "a", "password": "b", "remember": True}, {"#/remember"}),
        ({"username": 1, "password": None}, {"#/username", "#/password"}),
    ],
)
def test_login_body_is_validated(client, body, pointers):
    result = client.simulate_post("/auth/tokens", json=body)
    assert result.status_code == 422
    assert result.headers["content-type"] == "application/problem+json"
    assert {e["pointer"] for e in result.json["errors"]} == pointers


def test_login_needs_json(client, reporter):
    result = client.simulate_post(
        "/auth/tokens",
        body=f"username={reporter['username']}&password=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert result.status_code == 415


@pytest.mark.parametrize("path", ["/health", "/ready", "/openapi.json", "/docs"])
def test_public_routes_need_no_token(client, path):
    assert client.simulate_get(path).status_code == 200


def test_create_admin_prints_a_working_admin_token(client, database_url, db_conn):
    result = create_admin(database_url, "--username", "boss", "--email", "boss@example.com")
    assert result.returncode == 0, result.stderr
    tokens = TOKEN.findall(result.stdout)
    assert len(tokens) == 1
    me = client.simulate_get("/users", headers=bearer(tokens[0])).json["items"]
    assert [(u["username"], u["role"], u["active"]) for u in me] == [("boss", "admin", True)]
    created = client.simulate_post(
        "/users",
        headers=bearer(tokens[0]),
        json={"username": "ana", "email": "ana@example.com", "password": PASSWORD},
    )
    assert created.status_code == 201


def test_create_admin_if_empty_creates_on_an_empty_database(database_url, db_conn):
    result = create_admin(database_url, "--username", "boss", "--email", "boss@example.com", "--if-empty")
    assert result.returncode == 0, result.stderr
    assert TOKEN.search(result.stdout)
    assert db_conn.execute("SELECT username, role::text FROM users").fetchall() == [
        {"username": "boss", "role": "admin"}
    ]


def test_create_admin_if_empty_does_nothing_when_users_exist(database_url, db_conn, reporter):
    result = create_admin(database_url, "--username", "boss", "--email", "boss@example.com", "--if-empty")
    assert result.returncode == 0, result.stderr
    assert not TOKEN.search(result.stdout)
    assert db_conn.execute("SELECT id FROM users").fetchall() == [{"id": reporter["id"]}]
    assert db_conn.execute("SELECT count(*) AS n FROM api_tokens").fetchone()["n"] == 1


@pytest.mark.parametrize(
    "username, email",
    [
        ("boss", "other@example.com"),
        ("BOSS", "other@example.com"),
        ("other", "Boss@Example.com"),
    ],
)
def test_create_admin_refuses_a_taken_username_or_email(database_url, db_conn, make_user, username, email):
    make_user("reporter", username="boss", email="boss@example.com")
    result = create_admin(database_url, "--username", username, "--email", email)
    assert result.returncode != 0
    assert "already exists" in result.stderr and username in result.stderr
    assert "Traceback" not in result.stderr
    assert not TOKEN.search(result.stdout)
    assert db_conn.execute("SELECT count(*) AS n FROM users").fetchone()["n"] == 1


@pytest.mark.parametrize("username, email", [("no spaces", "a@example.com"), ("ok_name", "no-at-sign")])
def test_create_admin_refuses_an_invalid_username_or_email(database_url, db_conn, username, email):
    result = create_admin(database_url, "--username", username, "--email", email)
    assert result.returncode != 0
    assert "username" in result.stderr and "Traceback" not in result.stderr
    assert db_conn.execute("SELECT count(*) AS n FROM users").fetchone()["n"] == 0
