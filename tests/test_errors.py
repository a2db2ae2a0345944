"""Every error is problem+json, validation lists every bad member, hostile text is stored
verbatim or refused with a 422, nothing a client sends is a 500, and an unreachable
database is a 503 with Retry-After."""

import base64
import contextlib
import json
import time
import urllib.parse

import falcon.testing
import psycopg_pool
import pytest

from api.app import create_app
from api.config import Config
from api.db import Database, connect
from tests.fix_app import client_of
from tests.fix_db import scratch_database

MIB = 1024 * 1024


def problem(result, status):
    """The problem+json body of `result`, after checking its status, shape and that it leaks nothing."""
    assert result.status_code == status, result.text[:500]
    assert result.headers["content-type"] == "application/problem+json"
    body = result.json
    assert body["status"] == status
    assert all(isinstance(body[key], str) and body[key] for key in ("type", "title", "detail"))
    assert "Traceback" not in result.text and "psycopg" not in result.text
    return body


def pointers(result):
    """The sorted pointers of a 422, each error also carrying a detail."""
    errors = problem(result, 422)["errors"]
    assert all(error["detail"] for error in errors)
    return sorted({error["pointer"] for error in errors})


def post_raw(client, user, body, path="/incidents", content_type="application/json"):
    headers = {**user["headers"], **({"Content-Type": content_type} if content_type else {})}
    return client.simulate_post(path, body=body, headers=headers)


def post_json(client, user, body, path="/incidents"):
    """POST `body` as ASCII-escaped JSON, so lone surrogates travel as \\ud800 escapes."""
    return post_raw(client, user, json.dumps(body).encode(), path)


def count(db_conn, table):
    return db_conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]


def cursor(*values):
    return base64.urlsafe_b64encode(json.dumps(values).encode()).rstrip(b"=").decode()


# --- Falcon's own errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/incidents/abc",
        "/incidents/0",
        "/incidents/-1",
        "/incidents/1.0",
        "/incidents/9223372036854775808",
        "/incidents/1/nope",
        "/incidents/%00",
        "/categories/1/comments",
    ],
)
def test_unknown_route_or_non_id_is_404_problem(client, reporter, path):
    problem(client.simulate_get(path, headers=reporter["headers"]), 404)


@pytest.mark.parametrize(
    "spelling",
    ["+1", "0_1", "%D9%A1", "%EF%BC%91"],
    ids=["plus", "underscore", "arabic-indic-digit", "fullwidth-digit"],
)
def test_id_not_in_plain_ascii_digits_is_404_not_an_alias(client, reporter, make_incident, spelling):
    assert make_incident(reporter)["id"] == 1
    assert client.simulate_get("/incidents/1", headers=reporter["headers"]).status_code == 200
    problem(client.simulate_get(f"/incidents/{spelling}", headers=reporter["headers"]), 404)
    problem(client.simulate_get(f"/incidents/{spelling}/comments", headers=reporter["headers"]), 404)


def test_unknown_route_is_404_even_without_a_token(client):
    problem(client.simulate_get("/nope"), 404)


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("PUT", "/incidents", {"GET", "POST"}),
        ("DELETE", "/categories", {"GET", "POST"}),
        ("PUT", "/categories/1", {"GET", "PATCH", "DELETE"}),
        ("DELETE", "/incidents/1/comments", {"GET", "POST"}),
        ("POST", "/incidents/1/comments/1", {"GET"}),
        ("POST", "/health", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow(client, admin, method, path, allowed):
    result = client.simulate_request(method, path, json={}, headers=admin["headers"])
    problem(result, 405)
    assert {m.strip() for m in result.headers["allow"].split(",")} - {"OPTIONS"} == allowed


@pytest.mark.parametrize(
    "body",
    [
        b'{"title": ',
        b'{"title": "x"',
        b"{'title': 'x'}",
        b'{"title": "x",}',
        b"title=x",
        b'{"title": "\xff\xfe"}',
        b"",
        b"   ",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"title": "x", "assignee_id": 1' + b"0" * 5000 + b"}",
        b'{"title": "x", "category_ids": ['
        + b"[" * 300
        + b"]" * 300
        + b", "
        + b"[" * 300
        + b"]" * 300
        + b"]}",
    ],
    ids=[
        "truncated",
        "unclosed",
        "single-quotes",
        "trailing-comma",
        "form",
        "bad-utf8",
        "empty",
        "blank",
        "deep-arrays",
        "deep-objects",
        "huge-integer",
        "deep-unique-items",
    ],
)
def test_malformed_or_empty_json_is_400_and_writes_nothing(client, reporter, db_conn, body):
    problem(post_raw(client, reporter, body), 400)
    assert count(db_conn, "incidents") == 0


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "application/merge-patch+json",
        "application/jsonx",
    ],
)
def test_post_without_json_content_type_is_415(client, reporter, db_conn, content_type):
    problem(post_raw(client, reporter, b'{"title": "x"}', content_type=content_type), 415)
    assert count(db_conn, "incidents") == 0


@pytest.mark.parametrize(
    "content_type, status",
    [
        ("text/plain", 415),
        ("application/merge-patch+json", 200),
        ("application/json; charset=utf-8", 200),
    ],
)
def test_patch_content_types(client, reporter, make_incident, db_conn, content_type, status):
    incident = make_incident(reporter, title="before")
    result = client.simulate_patch(
        f"/incidents/{incident['id']}",
        body=b'{"title": "after"}',
        headers={**reporter["headers"], "Content-Type": content_type},
    )
    assert result.status_code == status
    title = db_conn.execute("SELECT title FROM incidents WHERE id = %s", [incident["id"]]).fetchone()["title"]
    assert title == ("after" if status == 200 else "before")


@pytest.mark.parametrize("size, status", [(MIB, 422), (MIB + 1, 413), (5 * MIB, 413)])
def test_body_over_one_mib_is_413(client, reporter, db_conn, size, status):
    body = b'{"title": "' + b"x" * (size - len(b'{"title": ""}')) + b'"}'
    assert len(body) == size
    result = problem(post_raw(client, reporter, body), status)
    if status == 422:
        assert [e["pointer"] for e in result["errors"]] == ["#/title"]
    assert count(db_conn, "incidents") == 0


def test_one_mib_counts_bytes_not_characters(client, reporter):
    body = json.dumps({"title": "é" * 600_000}, ensure_ascii=False).encode()
    problem(post_raw(client, reporter, body), 413)


# --- Validation: every bad member, with its pointer ---------------------------------------


@pytest.mark.parametrize(
    "body, expected",
    [
        ({}, ["#/title"]),
        ([], ["#"]),
        ("title", ["#"]),
        (None, ["#"]),
        (
            {
                "title": " ",
                "description": 7,
                "severity": "urgent",
                "assignee_id": 1.0,
                "category_ids": [1, 0, "2", 1.5],
                "id": 5,
                "status": "closed",
            },
            [
                "#/assignee_id",
                "#/category_ids/1",
                "#/category_ids/2",
                "#/category_ids/3",
                "#/description",
                "#/id",
                "#/severity",
                "#/status",
                "#/title",
            ],
        ),
        ({"title": True, "category_ids": [3, 3]}, ["#/category_ids", "#/title"]),
        ({"title": "t", "assignee_id": 2**63}, ["#/assignee_id"]),
        ({"title": "t", "category_ids": [1.0]}, ["#/category_ids/0"]),
        ({"title": "t", "category_ids": list(range(1, 52))}, ["#/category_ids"]),
        ({"title": "t", "severity": "HIGH"}, ["#/severity"]),
        ({"title": "t", "a/b": 1, "c~d": 2}, ["#/a~1b", "#/c~0d"]),
    ],
)
def test_422_lists_every_bad_member(client, reporter, db_conn, body, expected):
    result = post_json(client, reporter, body)
    assert pointers(result) == expected
    assert count(db_conn, "incidents") == 0


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"title": "a\u0000b", "id": 1}, ["#/id", "#/title"]),
        ({"title": "ok", "description": "\ud800", "severity": "extreme"}, ["#/description", "#/severity"]),
        ({"title": "", "description": "\u0000"}, ["#/description", "#/title"]),
    ],
)
def test_unstorable_text_is_listed_together_with_the_other_errors(client, reporter, body, expected):
    result = post_json(client, reporter, body)
    assert pointers(result) == expected


@pytest.mark.parametrize(
    "member, value",
    [
        ("id", 1),
        ("reporter_id", None),
        ("version", 7),
        ("created_at", "2020-01-01T00:00:00+00:00"),
        ("updated_at", "2020-01-01T00:00:00+00:00"),
        ("status", "resolved"),
        ("resolution", "done"),
        ("acknowledged_at", None),
        ("resolved_at", None),
        ("categories", []),
        ("allowed_transitions", []),
        ("source", "alertmanager"),
        ("dedup_key", "srv01/mysql"),
    ],
)
def test_read_only_members_cannot_be_mass_assigned_on_post(
    client, reporter, make_user, db_conn, member, value
):
    value = make_user("admin")["id"] if member == "reporter_id" else value
    result = client.simulate_post(
        "/incidents", json={"title": "t", member: value}, headers=reporter["headers"]
    )
    assert pointers(result) == [f"#/{member}"]
    assert count(db_conn, "incidents") == 0


@pytest.mark.parametrize(
    "member, value",
    [
        ("id", 999),
        ("reporter_id", None),
        ("version", 42),
        ("created_at", "2020-01-01T00:00:00+00:00"),
        ("source", "alerts"),
        ("dedup_key", None),
    ],
)
def test_read_only_members_cannot_be_mass_assigned_on_patch(
    client, reporter, make_user, make_incident, db_conn, member, value
):
    incident = make_incident(reporter)
    value = make_user("admin")["id"] if member == "reporter_id" else value
    result = client.simulate_patch(
        f"/incidents/{incident['id']}", json={member: value}, headers=reporter["headers"]
    )
    assert pointers(result) == [f"#/{member}"]
    row = db_conn.execute("SELECT id, reporter_id, version, created_at FROM incidents").fetchone()
    assert (row["id"], row["reporter_id"], row["version"]) == (incident["id"], reporter["id"], 1)
    assert row["created_at"].isoformat() == incident["created_at"]


# --- Hostile text -------------------------------------------------------------------------

HOSTILE = {
    "sql": "'; DROP TABLE incidents; --",
    "sql-quote": "Robert'); DELETE FROM users WHERE ('1'='1",
    "placeholders": "%s %(title)s {title} $1 :name ?",
    "emoji": "🔥 database down 🚒",
    "zwj": "👩‍👩‍👧‍👦 family",
    "rtl": "قاعدة البيانات معطلة",
    "rtl-override": "invoice\u202egnp.exe",
    "combining": "e\u0301 Z\u0364\u0351a\u0308\u0356lgo\u0303",
    "200-emoji": "🔥" * 200,
    "200-combining-marks": "e" + "\u0301" * 199,
    "padded": "  spaces kept  ",
    "escapes": 'back\\slash "quoted" \n new line \t tab',
    "html": "<script>alert(1)</script>",
    "bom-and-zero-width": "\ufeff\u200b title",
    "non-bmp": "𝕳𝖊𝖑𝖑𝖔 𠜎",
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=list(HOSTILE))
def test_hostile_text_is_stored_verbatim(client, reporter, db_conn, text):
    created = client.simulate_post(
        "/incidents", json={"title": text, "description": text}, headers=reporter["headers"]
    )
    assert created.status_code == 201, created.text
    assert created.json["title"] == text and created.json["description"] == text
    got = client.simulate_get(created.headers["location"], headers=reporter["headers"]).json
    assert got["title"] == text and got["description"] == text
    rows = db_conn.execute("SELECT title, description FROM incidents").fetchall()
    assert rows == [{"title": text, "description": text}]
    assert count(db_conn, "users") == 1


@pytest.mark.parametrize(
    "body, pointer",
    [
        ({"title": "x" * 100_000}, "#/title"),
        ({"title": "🔥" * 201}, "#/title"),
        ({"title": "e" + "\u0301" * 200}, "#/title"),
        ({"title": ""}, "#/title"),
        ({"title": " \t\n\u3000"}, "#/title"),
        ({"title": "a\u0000b"}, "#/title"),
        ({"title": "\u0000"}, "#/title"),
        ({"title": "\ud800"}, "#/title"),
        ({"title": "ok \udfff"}, "#/title"),
        ({"title": "t", "description": "d" * 10_001}, "#/description"),
        ({"title": "t", "description": "nul \u0000 inside"}, "#/description"),
        ({"title": "t", "description": "\udbff"}, "#/description"),
        ({"title": "t", "nul\u0000key": 1}, "#/nul%00key"),
    ],
)
def test_oversized_blank_or_unstorable_text_is_422_at_its_pointer(client, reporter, db_conn, body, pointer):
    result = post_json(client, reporter, body)
    assert pointers(result) == [pointer]
    assert count(db_conn, "incidents") == 0


def test_lone_surrogate_in_a_member_name_is_422(client, reporter, db_conn):
    result = post_raw(client, reporter, b'{"title": "t", "\\ud800": 1}')
    assert len(problem(result, 422)["errors"]) >= 1
    assert count(db_conn, "incidents") == 0


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=1e3", "limit"),
        ("limit=-1", "limit"),
        ("limit=%EF%BC%91", "limit"),
        ("limit=%00", "limit"),
        ("limit=", "limit"),
        ("limit=1&limit=2", "limit"),
        ("status=open%00", "status"),
        ("sort=%27%3B%20DROP", "sort"),
        ("cursor=garbage", "cursor"),
        ("cursor=%ED%A0%80", "cursor"),
        ("cursor=" + "A" * 10_000, "cursor"),
        ("cursor=" + cursor("-created_at", "2026-01-01T00:00:00", 1), "cursor"),
        ("cursor=" + cursor("-created_at", "2026-01-01T00:00:00+00:00", 2**63), "cursor"),
        ("cursor=" + cursor("-created_at", "2026-01-01T00:00:00+00:00", True), "cursor"),
        ("cursor=" + cursor("-created_at", "'; DROP TABLE incidents; --", 1), "cursor"),
        ("created_after=yesterday", "created_after"),
        ("reporter_id=1%00", "reporter_id"),
        ("page=2", "page"),
        ("%00=1", "\u0000"),
    ],
)
def test_bad_query_parameters_are_400_naming_the_parameter(client, reporter, query, parameter):
    body = problem(client.simulate_get("/incidents", query_string=query, headers=reporter["headers"]), 400)
    assert [error["parameter"] for error in body["errors"]] == [parameter]
    assert all(error["detail"] for error in body["errors"])


# --- The database going away --------------------------------------------------------------


def set_connections_allowed(server_url, url, allowed):
    """Let clients connect to `url`'s database again, or refuse them and end their sessions."""
    name = urllib.parse.urlsplit(url).path[1:]
    with connect(server_url) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])


@contextlib.contextmanager
def app_on_scratch_database(server_url):
    """A client of an app with an open pool on a database of its own, and that database's URL."""
    with scratch_database(server_url) as url, client_of(Config(database_url=url, pool_timeout=1)) as client:
        assert client.simulate_get("/ready").status_code == 200
        yield client, url


@pytest.fixture(params=["never-reachable", "went-away"])
def outage_client(request, server_url):
    """A client of an app whose database cannot be reached."""
    if request.param == "never-reachable":
        config = Config(database_url="postgresql://postgres@/x?host=/nonexistent", pool_timeout=1)
        db = Database(config)
        with pytest.raises(psycopg_pool.PoolTimeout):
            falcon.async_to_sync(db.open, timeout=1)
        yield falcon.testing.TestClient(create_app(db))
        falcon.async_to_sync(db.close)
    else:
        with app_on_scratch_database(server_url) as (client, url):
            set_connections_allowed(server_url, url, False)
            yield client


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/ready", None),
        ("GET", "/incidents", None),
        ("POST", "/incidents", {"title": "t"}),
        ("GET", "/categories/1", None),
    ],
)
def test_unreachable_database_is_503_with_retry_after(outage_client, method, path, body):
    started = time.monotonic()
    result = outage_client.simulate_request(
        method, path, json=body, headers={"Authorization": "Bearer inc_some-token"}
    )
    problem(result, 503)
    assert result.json["title"] == "Service Unavailable"
    assert int(result.headers["retry-after"]) > 0
    assert time.monotonic() - started < 10


def test_service_recovers_when_the_database_comes_back(server_url):
    with app_on_scratch_database(server_url) as (client, url):
        set_connections_allowed(server_url, url, False)
        problem(client.simulate_get("/ready"), 503)
        set_connections_allowed(server_url, url, True)
        deadline = time.monotonic() + 30
        while (result := client.simulate_get("/ready")).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert result.status_code == 200 and result.json == {"status": "ok", "database": "ok"}
