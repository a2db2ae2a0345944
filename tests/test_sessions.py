"""Sessions: tokens expire, a user lists and revokes their own, a password change revokes the
user's other tokens and a deactivation all of them."""

import datetime
import hashlib

import pytest

from api.config import Config, ConfigError
from tests.fix_app import PASSWORD, client_of

TOKEN_INFO_KEYS = {"id", "created_at", "expires_at", "current"}
NEW_PASSWORD = "a brand new secret"


def login(client, username, password=PASSWORD, **kwargs):
    return client.simulate_post("/auth/tokens", json={"username": username, "password": password}, **kwargs)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def timestamp(text):
    return datetime.datetime.fromisoformat(text)


def works(client, token):
    return client.simulate_get("/users", headers=bearer(token)).status_code == 200


def expire(db_conn, token):
    db_conn.execute(
        "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = %s",
        [hashlib.sha256(token.encode()).digest()],
    )


# --- Expiry ---------------------------------------------------------------------------------


def test_a_login_carries_its_id_and_expires_at_token_ttl_days_after_issue(client, reporter, db_conn):
    result = login(client, reporter["username"])
    assert result.status_code == 201
    body = result.json
    assert set(body) == {"token", "id", "created_at", "expires_at", "user"}
    assert timestamp(body["expires_at"]) - timestamp(body["created_at"]) == datetime.timedelta(days=30)
    assert body["expires_at"].endswith("+00:00")
    stored = db_conn.execute("SELECT id, expires_at FROM api_tokens WHERE id = %s", [body["id"]]).fetchone()
    assert stored["expires_at"] == timestamp(body["expires_at"])


def test_token_ttl_days_sets_the_lifetime(config, reporter):
    with client_of(Config(config.database_url, token_ttl_days=7)) as client:
        body = login(client, reporter["username"]).json
    assert timestamp(body["expires_at"]) - timestamp(body["created_at"]) == datetime.timedelta(days=7)


@pytest.mark.parametrize("value, days", [(None, 30), ("7", 7), ("3650", 3650)])
def test_token_ttl_days_is_read_from_the_environment(value, days):
    env = {"DATABASE_URL": "postgresql:///x", **({"TOKEN_TTL_DAYS": value} if value else {})}
    assert Config.from_env(env).token_ttl_days == days


@pytest.mark.parametrize("value", ["0", "-1", "3651"])
def test_a_token_ttl_days_out_of_range_stops_start_up(value):
    with pytest.raises(ConfigError, match="TOKEN_TTL_DAYS"):
        Config.from_env({"DATABASE_URL": "postgresql:///x", "TOKEN_TTL_DAYS": value})


@pytest.mark.parametrize("path", ["/users", "/incidents/{incident}", "/auth/tokens"])
def test_an_expired_token_is_401_like_an_unknown_one(client, db_conn, reporter, make_incident, path):
    incident = make_incident(reporter)
    token = login(client, reporter["username"]).json["token"]
    assert client.simulate_get(path.format(incident=incident["id"]), headers=bearer(token)).status_code == 200
    expire(db_conn, token)
    expired = client.simulate_get(path.format(incident=incident["id"]), headers=bearer(token))
    unknown = client.simulate_get(path.format(incident=incident["id"]), headers=bearer("inc_" + "x" * 43))
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert (expired.status_code, expired.headers["www-authenticate"], expired.text) == (
        unknown.status_code,
        unknown.headers["www-authenticate"],
        unknown.text,
    )
    assert client.simulate_delete("/auth/tokens/current", headers=bearer(token)).status_code == 401


def test_a_login_drops_the_users_expired_tokens(client, db_conn, reporter):
    expire(db_conn, reporter["token"])
    login(client, reporter["username"])
    rows = db_conn.execute("SELECT expires_at > now() AS live FROM api_tokens").fetchall()
    assert rows == [{"live": True}]


# --- GET /auth/tokens and DELETE /auth/tokens/{id} ----------------------------------------------


def test_get_auth_tokens_lists_the_callers_live_tokens_and_marks_the_current_one(client, db_conn, make_user):
    ana, bob = make_user(), make_user()
    logins = [login(client, ana["username"]).json for _ in range(3)]
    expire(db_conn, logins[0]["token"])
    login(client, bob["username"])
    result = client.simulate_get("/auth/tokens", headers=bearer(logins[1]["token"]))
    assert result.status_code == 200
    assert result.headers["cache-control"] == "no-store"
    items = result.json["items"]
    assert all(set(item) == TOKEN_INFO_KEYS for item in items)
    ids = [item["id"] for item in items]
    fixture_token_id = db_conn.execute("SELECT min(id) AS id FROM api_tokens").fetchone()["id"]
    assert ids == [fixture_token_id, logins[1]["id"], logins[2]["id"]]
    assert [item["current"] for item in items] == [False, True, False]
    assert items[1] == {key: logins[1][key] for key in TOKEN_INFO_KEYS - {"current"}} | {"current": True}
    assert result.json["next_cursor"] is None
    for secret in [ana["token"], *(login["token"] for login in logins)]:
        assert secret not in result.text and hashlib.sha256(secret.encode()).hexdigest() not in result.text


def test_get_auth_tokens_is_paginated(client, reporter):
    for _ in range(4):
        login(client, reporter["username"])
    first = client.simulate_get("/auth/tokens", params={"limit": "2"}, headers=reporter["headers"])
    assert first.status_code == 200 and len(first.json["items"]) == 2
    assert first.headers["link"].endswith('; rel="next"')
    rest = client.simulate_get(
        "/auth/tokens",
        params={"limit": "2", "cursor": first.json["next_cursor"]},
        headers=reporter["headers"],
    )
    second = client.simulate_get(
        "/auth/tokens",
        params={"limit": "2", "cursor": rest.json["next_cursor"]},
        headers=reporter["headers"],
    )
    ids = [item["id"] for page in (first, rest, second) for item in page.json["items"]]
    assert len(ids) == 5 == len(set(ids)) and ids == sorted(ids)
    assert second.json["next_cursor"] is None
    bad = client.simulate_get("/auth/tokens", params={"limit": "0"}, headers=reporter["headers"])
    assert bad.status_code == 400 and bad.json["errors"][0]["parameter"] == "limit"


def test_get_auth_tokens_needs_a_token(client):
    result = client.simulate_get("/auth/tokens")
    assert result.status_code == 401 and result.headers["cache-control"] == "no-store"


def test_delete_auth_tokens_id_revokes_one_of_the_callers_own(client, db_conn, reporter):
    other = login(client, reporter["username"]).json
    result = client.simulate_delete(f"/auth/tokens/{other['id']}", headers=reporter["headers"])
    assert result.status_code == 204 and result.text == ""
    assert not works(client, other["token"]) and works(client, reporter["token"])
    assert (
        db_conn.execute("SELECT count(*) AS n FROM api_tokens WHERE id = %s", [other["id"]]).fetchone()["n"]
        == 0
    )
    again = client.simulate_delete(f"/auth/tokens/{other['id']}", headers=reporter["headers"])
    assert again.status_code == 404 and again.headers["content-type"] == "application/problem+json"


def test_a_token_can_revoke_itself_by_id(client, reporter):
    mine = client.simulate_get("/auth/tokens", headers=reporter["headers"]).json["items"][0]
    assert (
        client.simulate_delete(f"/auth/tokens/{mine['id']}", headers=reporter["headers"]).status_code == 204
    )
    assert not works(client, reporter["token"])


@pytest.mark.parametrize("whose", ["another user's", "expired", "unknown", "not an id"])
def test_delete_auth_tokens_id_is_404_for_anything_but_a_live_token_of_ones_own(
    client, db_conn, make_user, whose
):
    me, other = make_user(), make_user()
    target = login(client, (other if whose == "another user's" else me)["username"]).json
    if whose == "expired":
        expire(db_conn, target["token"])
    path = {"unknown": "/auth/tokens/999999", "not an id": "/auth/tokens/abc"}.get(
        whose, f"/auth/tokens/{target['id']}"
    )
    result = client.simulate_delete(path, headers=me["headers"])
    assert result.status_code == 404 and result.headers["content-type"] == "application/problem+json"
    assert (
        db_conn.execute("SELECT count(*) AS n FROM api_tokens WHERE id = %s", [target["id"]]).fetchone()["n"]
        == 1
    )


# --- Password changes and deactivation revoke tokens --------------------------------------------


def change_password(client, user, token, **body):
    return client.simulate_patch(f"/users/{user['id']}", json=body, headers=bearer(token))


def test_changing_ones_own_password_needs_the_current_one(client, db_conn, reporter):
    before = db_conn.execute("SELECT password_hash FROM users").fetchone()
    missing = change_password(client, reporter, reporter["token"], password=NEW_PASSWORD)
    assert missing.status_code == 422
    assert [e["pointer"] for e in missing.json["errors"]] == ["#/current_password"]
    wrong = change_password(
        client, reporter, reporter["token"], password=NEW_PASSWORD, current_password="not my password"
    )
    assert wrong.status_code == 403 and wrong.headers["content-type"] == "application/problem+json"
    assert db_conn.execute("SELECT password_hash FROM users").fetchone() == before
    right = change_password(
        client, reporter, reporter["token"], password=NEW_PASSWORD, current_password=PASSWORD
    )
    assert right.status_code == 200
    assert login(client, reporter["username"], NEW_PASSWORD).status_code == 201


def test_current_password_serves_only_to_change_ones_own(client, admin, reporter):
    alone = change_password(client, reporter, reporter["token"], current_password=PASSWORD)
    assert alone.status_code == 422 and alone.json["errors"][0]["pointer"] == "#/current_password"
    for_another = change_password(
        client, reporter, admin["token"], password=NEW_PASSWORD, current_password=PASSWORD
    )
    assert for_another.status_code == 422


def test_changing_ones_own_password_revokes_every_other_token_of_that_user(client, make_user):
    ana, bob = make_user(), make_user()
    others = [login(client, ana["username"]).json["token"] for _ in range(2)]
    result = change_password(client, ana, ana["token"], password=NEW_PASSWORD, current_password=PASSWORD)
    assert result.status_code == 200
    assert works(client, ana["token"]) and not any(works(client, token) for token in others)
    assert works(client, bob["token"])
    listed = client.simulate_get("/auth/tokens", headers=ana["headers"]).json["items"]
    assert [item["current"] for item in listed] == [True]


def test_an_admin_setting_a_users_password_revokes_all_their_tokens(client, admin, reporter):
    result = change_password(client, reporter, admin["token"], password=NEW_PASSWORD)
    assert result.status_code == 200
    assert not works(client, reporter["token"]) and works(client, admin["token"])


def test_a_change_without_a_new_password_revokes_nothing(client, reporter):
    other = login(client, reporter["username"]).json["token"]
    assert change_password(client, reporter, reporter["token"], email="new@example.com").status_code == 200
    assert works(client, other)


def test_a_user_without_a_password_sets_a_first_one_without_current_password(client, db_conn, admin):
    db_conn.execute("UPDATE users SET password_hash = NULL WHERE id = %s", [admin["id"]])
    assert change_password(client, admin, admin["token"], password=NEW_PASSWORD).status_code == 200
    assert login(client, admin["username"], NEW_PASSWORD).status_code == 201


def test_deactivating_a_user_revokes_all_their_tokens_for_good(client, db_conn, admin, reporter):
    login(client, reporter["username"])
    deactivated = client.simulate_patch(
        f"/users/{reporter['id']}", json={"active": False}, headers=admin["headers"]
    )
    assert deactivated.status_code == 200
    assert (
        db_conn.execute(
            "SELECT count(*) AS n FROM api_tokens WHERE user_id = %s", [reporter["id"]]
        ).fetchone()["n"]
        == 0
    )
    client.simulate_patch(f"/users/{reporter['id']}", json={"active": True}, headers=admin["headers"])
    assert not works(client, reporter["token"])
    assert works(client, login(client, reporter["username"]).json["token"])
