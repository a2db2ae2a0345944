"""Secrets and who gets in: tokens and passwords are never stored or logged in clear, logins
are throttled per username and client address, and per address, without telling whether a
user exists, and nobody reaches another user's notifications."""

import hashlib
import json
import re
import statistics
import time

import pytest
from psycopg import sql

from api.resources.tokens import THROTTLE
from tests.fix_app import PASSWORD
from tests.fix_db import tables_of
from tests.fix_server import call, gunicorn

TOKEN = re.compile(r"inc_[A-Za-z0-9_-]{43}")  # 32 random bytes, base64url: 256 bits
WINDOW_SECONDS = THROTTLE["window"].total_seconds()


def login(client, username, password=PASSWORD, address=None):
    return client.simulate_post(
        "/auth/tokens", json={"username": username, "password": password}, remote_addr=address
    )


def everything_stored(db_conn):
    """Every row of every table of the app, as text (bytea as hex)."""
    return "\n".join(
        row["t"]
        for table in tables_of(db_conn)
        for row in db_conn.execute(sql.SQL("SELECT t::text AS t FROM {} t").format(sql.Identifier(table)))
    )


# --- Tokens and passwords -----------------------------------------------------------------


def test_tokens_carry_256_random_bits_behind_a_prefix_and_are_stored_only_as_sha256(
    client, db_conn, reporter
):
    tokens = [login(client, reporter["username"]).json["token"] for _ in range(5)]
    assert all(TOKEN.fullmatch(token) for token in tokens) and len(set(tokens)) == 5
    stored = everything_stored(db_conn)
    for token in tokens:
        assert token not in stored and token[4:] not in stored
        assert hashlib.sha256(token.encode()).hexdigest() in stored


def test_passwords_are_stored_as_argon2id_at_owasp_parameters(client, db_conn, admin):
    created = client.simulate_post(
        "/users",
        json={"username": "ana", "email": "ana@example.com", "password": "first secret"},
        headers=admin["headers"],
    )
    client.simulate_patch(
        f"/users/{created.json['id']}", json={"password": "second secret"}, headers=admin["headers"]
    )
    stored = everything_stored(db_conn)
    assert "first secret" not in stored and "second secret" not in stored
    password_hash = db_conn.execute("SELECT password_hash FROM users WHERE username = 'ana'").fetchone()[
        "password_hash"
    ]
    assert password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert login(client, "ana", "second secret").status_code == 201


# --- Login throttling ---------------------------------------------------------------------


def fail_logins(client, username, times, address=None):
    for _ in range(times):
        assert login(client, username, "wrong password", address).status_code == 401


def assert_throttled(result):
    assert result.status_code == 429
    assert result.headers["content-type"] == "application/problem+json"
    assert 0 < int(result.headers["retry-after"]) <= WINDOW_SECONDS


def test_ten_failures_in_15_minutes_throttle_the_username_even_with_the_right_password(
    client, db_conn, reporter
):
    fail_logins(client, reporter["username"], THROTTLE["pair_max"])
    assert_throttled(login(client, reporter["username"]))
    assert_throttled(login(client, reporter["username"].upper(), "wrong password"))
    assert db_conn.execute("SELECT count(*) AS n FROM api_tokens").fetchone()["n"] == 1  # the fixture's


def test_throttling_is_per_username(client, make_user):
    victim, bystander = make_user(), make_user()
    fail_logins(client, victim["username"], THROTTLE["pair_max"])
    assert login(client, bystander["username"]).status_code == 201
    assert login(client, victim["username"]).status_code == 429
    assert client.simulate_get("/users", headers=victim["headers"]).status_code == 200  # tokens still work


def test_nine_failures_do_not_throttle_and_a_success_clears_only_ones_own_count(client, make_user):
    ana, bob = make_user(), make_user()
    fail_logins(client, ana["username"], THROTTLE["pair_max"] - 1)
    fail_logins(client, bob["username"], THROTTLE["pair_max"] - 1)
    assert login(client, ana["username"]).status_code == 201
    fail_logins(client, ana["username"], THROTTLE["pair_max"] - 1)
    assert login(client, ana["username"]).status_code == 201
    fail_logins(client, bob["username"], 1)
    assert login(client, bob["username"]).status_code == 429


def test_throttling_lifts_as_failures_leave_the_window(client, db_conn, reporter):
    fail_logins(client, reporter["username"], THROTTLE["pair_max"])
    db_conn.execute("UPDATE login_failures SET failed_at = failed_at - %s", [THROTTLE["window"]])
    assert login(client, reporter["username"]).status_code == 201
    assert db_conn.execute("SELECT count(*) AS n FROM login_failures").fetchone()["n"] == 0


def test_retry_after_counts_down_to_when_the_throttle_lifts(client, db_conn, reporter):
    fail_logins(client, reporter["username"], THROTTLE["pair_max"])
    db_conn.execute("UPDATE login_failures SET failed_at = now() - interval '10 minutes'")
    retry_after = int(login(client, reporter["username"]).headers["retry-after"])
    assert 299 <= retry_after <= 300


def test_an_unknown_username_is_throttled_alike_so_nothing_tells_whether_it_exists(client, reporter):
    fail_logins(client, reporter["username"], THROTTLE["pair_max"])
    fail_logins(client, "nobody-by-this-name", THROTTLE["pair_max"])
    known = login(client, reporter["username"], "wrong password")
    unknown = login(client, "nobody-by-this-name", "wrong password")
    assert (known.status_code, known.text) == (unknown.status_code, unknown.text)
    assert_throttled(unknown)


def test_failures_from_another_address_never_lock_the_real_user_out(client, db_conn, reporter):
    fail_logins(client, reporter["username"], THROTTLE["pair_max"], address="203.0.113.5")
    assert_throttled(login(client, reporter["username"], address="203.0.113.5"))
    assert login(client, reporter["username"], address="198.51.100.7").status_code == 201
    assert_throttled(login(client, reporter["username"], address="203.0.113.5"))  # still, for the stranger


def test_one_address_is_throttled_after_100_failures_across_usernames(client, db_conn, make_user):
    ana = make_user()
    for n in range(THROTTLE["address_max"] - 1):
        assert login(client, f"sprayed{n}", "wrong password", "203.0.113.5").status_code == 401
    for _ in range(3):  # a success takes back its own attempt from the address's count, no other
        assert login(client, ana["username"], address="203.0.113.5").status_code == 201
    assert login(client, "sprayed-once-more", "wrong password", "203.0.113.5").status_code == 401
    assert_throttled(login(client, "and-once-more", "wrong password", "203.0.113.5"))
    assert_throttled(login(client, ana["username"], address="203.0.113.5"))
    assert login(client, ana["username"], address="198.51.100.7").status_code == 201
    db_conn.execute("UPDATE login_failures SET failed_at = now() - interval '10 minutes'")
    assert 299 <= int(login(client, ana["username"], address="203.0.113.5").headers["retry-after"]) <= 300


def test_failed_usernames_are_stored_only_as_hashes(client, db_conn):
    fail_logins(client, "my-password-typed-as-username", 1)
    assert "my-password-typed-as-username" not in everything_stored(db_conn)


def median_seconds(*attempts, times=7):
    """The median duration of each attempt (each a 401), run in turns so that a change in the
    machine's load weighs on all of them alike."""
    durations = [[] for _ in attempts]
    for _ in range(times):
        for attempt, measured in zip(attempts, durations, strict=True):
            started = time.perf_counter()
            assert attempt().status_code == 401
            measured.append(time.perf_counter() - started)
    return [statistics.median(measured) for measured in durations]


def test_a_wrong_password_and_an_unknown_user_take_as_long(client, make_user):
    known = make_user()
    names = iter(f"nobody{n}" for n in range(100))
    wrong_password, unknown_user = median_seconds(
        lambda: login(client, known["username"], "wrong password"),
        lambda: login(client, next(names), "wrong password"),
    )
    assert abs(wrong_password - unknown_user) < 0.25 * max(wrong_password, unknown_user)


def test_x_forwarded_for_counts_only_from_a_proxy_in_forwarded_allow_ips(database_url, reporter, tmp_path):
    def attempt(base, forwarded_for, password="wrong password"):
        body = {"username": reporter["username"], "password": password}
        return call("POST", base + "/auth/tokens", body, {"X-Forwarded-For": forwarded_for}).status

    # The tests' client is the peer 127.0.0.1: untrusted by default, whatever it forwards.
    with gunicorn(database_url, tmp_path / "untrusting.log") as (base, _):
        assert [attempt(base, f"203.0.113.{n}") for n in range(THROTTLE["pair_max"])] == [401] * 10
        assert attempt(base, "198.51.100.7", PASSWORD) == 429
    with gunicorn(database_url, tmp_path / "trusting.log", FORWARDED_ALLOW_IPS="10.0.0.0/8, 127.0.0.1") as (
        base,
        _,
    ):
        assert [attempt(base, "192.0.2.1") for _ in range(THROTTLE["pair_max"])] == [401] * 10
        assert attempt(base, "192.0.2.1", PASSWORD) == 429
        assert attempt(base, "198.51.100.7, 192.0.2.1, 10.0.0.3", PASSWORD) == 429  # what 192.0.2.1 forged
        assert attempt(base, "198.51.100.7, 10.0.0.3", PASSWORD) == 201


# --- Idempotency records ----------------------------------------------------------------------


def test_an_idempotent_user_creation_stores_no_value_derived_from_the_password(client, db_conn, admin):
    body = {"username": "ana", "email": "ana@example.com", "password": "ana's own secret"}
    headers = {**admin["headers"], "Idempotency-Key": "create-ana"}
    assert client.simulate_post("/users", json=body, headers=headers).status_code == 201
    stored = everything_stored(db_conn)
    with_password = json.dumps(body, sort_keys=True, ensure_ascii=False)
    for text in [body["password"], f"POST /users\n{with_password}", with_password]:
        for digest in (hashlib.sha256, hashlib.sha1, hashlib.md5, hashlib.sha512):
            assert digest(text.encode()).hexdigest() not in stored
    assert "ana's own secret" not in stored
    replay = client.simulate_post("/users", json={**body, "password": "another secret"}, headers=headers)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert login(client, "ana", "ana's own secret").status_code == 201  # the replay changed nothing


# --- Nobody reaches another user's notifications ------------------------------------------


def test_a_user_can_neither_see_nor_mark_anothers_notifications(
    client, db_conn, make_user, responder, make_incident
):
    ana, bob = make_user(), make_user()
    make_incident(responder, assignee_id=ana["id"])
    mine = client.simulate_get("/notifications", headers=ana["headers"]).json["items"]
    assert len(mine) == 1
    assert client.simulate_get("/notifications", headers=bob["headers"]).json["items"] == []
    result = client.simulate_post(f"/notifications/{mine[0]['id']}/read", headers=bob["headers"])
    assert result.status_code == 404
    assert result.headers["content-type"] == "application/problem+json"
    assert db_conn.execute("SELECT read FROM notifications").fetchone()["read"] is False
    assert (
        client.simulate_post(f"/notifications/{mine[0]['id']}/read", headers=ana["headers"]).status_code
        == 204
    )
    assert db_conn.execute("SELECT read FROM notifications").fetchone()["read"] is True


# --- Logs ---------------------------------------------------------------------------------


def test_no_token_password_or_hash_ever_reaches_the_logs(database_url, db_conn, make_user, tmp_path):
    admin = make_user("admin")
    log_path = tmp_path / "gunicorn.log"
    secrets = [admin["token"], PASSWORD, "new secret pass", "wrong secret pass", "user's own secret"]
    with gunicorn(database_url, log_path, LOG_LEVEL="DEBUG") as (base, _):
        auth = {"Authorization": f"Bearer {admin['token']}"}
        created = call(
            "POST",
            base + "/users",
            {"username": "ana", "email": "ana@example.com", "password": "user's own secret"},
            auth,
        )
        call("PATCH", f"{base}/users/{created.body['id']}", {"password": "new secret pass"}, auth)
        call(
            "POST",
            base + "/users",
            {"username": "ana", "email": "ana@example.com", "password": PASSWORD},
            auth,
        )  # 409
        call(
            "POST", base + "/users", {"username": "x", "password": PASSWORD, "token": admin["token"]}, auth
        )  # 422
        logged_in = call("POST", base + "/auth/tokens", {"username": "ana", "password": "new secret pass"})
        secrets.append(logged_in.body["token"])
        for _ in range(THROTTLE["pair_max"] + 1):
            call("POST", base + "/auth/tokens", {"username": "ana", "password": "wrong secret pass"})
        call("GET", base + "/incidents", headers={"Authorization": f"Bearer {admin['token']}x"})
        call(
            "DELETE",
            base + "/auth/tokens/current",
            headers={"Authorization": f"Bearer {logged_in.body['token']}"},
        )
    secrets += [
        row["v"]
        for row in db_conn.execute(
            "SELECT password_hash AS v FROM users WHERE password_hash IS NOT NULL "
            "UNION ALL SELECT encode(token_hash, 'hex') FROM api_tokens"
        ).fetchall()
    ]
    secrets += [hashlib.sha256(s.encode()).hexdigest() for s in secrets if s.startswith("inc_")]
    log = log_path.read_text()
    assert "POST /auth/tokens 429" in log and "GET /incidents 401" in log
    assert [secret for secret in secrets if secret in log] == []
    assert "Traceback" not in log


# --- Headers and log lines ----------------------------------------------------------------


def test_every_response_carries_nosniff_and_a_request_id(client, reporter):
    answers = [
        client.simulate_get("/health"),
        client.simulate_get("/incidents"),  # 401
        client.simulate_get("/nowhere"),  # 404
        client.simulate_get("/incidents", headers=reporter["headers"]),
        client.simulate_post("/incidents", json={}, headers=reporter["headers"]),  # 422
    ]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])
    assert len({answer.headers["x-request-id"] for answer in answers}) == len(answers)


@pytest.mark.parametrize(
    "sent, kept",
    [
        ("req-42.a:b_C", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("has space", False),
        ("new\nline", False),
        ("", False),
        ("ünï", False),
    ],
)
def test_a_sane_client_request_id_is_kept_and_any_other_replaced(client, sent, kept):
    answer = client.simulate_get("/health", headers={"X-Request-ID": sent})
    assert (answer.headers["x-request-id"] == sent) is kept
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", answer.headers["x-request-id"])


def test_the_log_line_carries_the_request_id_and_escapes_control_characters(client, caplog):
    with caplog.at_level("INFO", logger="api"):
        answer = client.simulate_get(
            "/x%0A2026-12-02 INFO forged%1B[31m\\", headers={"X-Request-ID": "abc-1"}
        )
    lines = [record.getMessage() for record in caplog.records if record.name == "api"]
    assert answer.status_code == 404
    assert lines == ["abc-1 GET /x\\x0a2026-12-02 INFO forged\\x1b[31m\\\\ 404 " + lines[0].split(" 404 ")[1]]
    assert "\n" not in lines[0] and "\x1b" not in lines[0]


def test_nothing_under_auth_may_be_cached(client, reporter):
    answers = [
        login(client, reporter["username"]),
        login(client, reporter["username"], "wrong password"),
        client.simulate_get("/auth/tokens/current", headers=reporter["headers"]),
    ]
    assert [answer.headers.get("cache-control") for answer in answers] == ["no-store"] * 3
    assert "cache-control" not in client.simulate_get("/incidents", headers=reporter["headers"]).headers


def test_the_docs_page_has_a_content_security_policy_allowing_only_itself(client):
    policy = client.simulate_get("/docs").headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert re.fullmatch(r"'self' 'sha256-[A-Za-z0-9+/]{43}='", directives["script-src"])
    assert directives["frame-ancestors"] == "'none'"
