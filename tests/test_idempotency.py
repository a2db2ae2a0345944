"""Idempotency-Key on the POSTs that create: a replay gets the stored response and writes
nothing; another request under the same key is a 422, a concurrent one a 409; keys are per user."""

import asyncio

import falcon.testing
import pytest

from tests.fix_server import lock_waiters, row_locked

KEY = "7d1c7a52-9d0e-4c59-a2b4-0f6f3c1e2a11"


def count(db_conn, table):
    return db_conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]


def post(client, user, path, body, key=KEY):
    headers = {**user["headers"], **({"Idempotency-Key": key} if key is not None else {})}
    return client.simulate_post(path, json=body, headers=headers)


@pytest.fixture
def creates(admin, responder, make_incident):
    """For each POST that creates: (path, body, table it writes, user who may send it)."""
    incident = make_incident(responder)
    return {
        "incident": ("/incidents", {"title": "Disk full"}, "incidents", responder),
        "comment": (f"/incidents/{incident['id']}/comments", {"content": "on it"}, "comments", responder),
        "resolve": (
            f"/incidents/{incident['id']}/resolve",
            {"resolution": "freed space"},
            "incident_history",
            responder,
        ),
        "user": (
            "/users",
            {"username": "newbie", "email": "n@example.com", "password": "long enough"},
            "users",
            admin,
        ),
        "category": ("/categories", {"name": "storage"}, "categories", admin),
    }


@pytest.mark.parametrize("name", ["incident", "comment", "resolve", "user", "category"])
def test_replay_returns_the_stored_response_and_writes_once(client, db_conn, creates, name):
    path, body, table, user = creates[name]
    before = count(db_conn, table)
    first = post(client, user, path, body)
    assert first.status_code in (200, 201), first.text
    assert count(db_conn, table) == before + 1
    for _ in range(2):
        again = post(client, user, path, body)
        assert (again.status_code, again.text) == (first.status_code, first.text)
        assert again.headers["idempotent-replayed"] == "true"
        for header in ("location", "etag", "content-type"):
            assert again.headers.get(header) == first.headers.get(header)
    assert "idempotent-replayed" not in first.headers
    assert count(db_conn, table) == before + 1
    assert count(db_conn, "idempotency_keys") == 1


def test_replay_is_the_response_of_then_not_of_now(client, db_conn, responder, make_incident):
    first = post(client, responder, "/incidents", {"title": "Disk full"})
    incident_id = first.json["id"]
    client.simulate_patch(
        f"/incidents/{incident_id}", json={"title": "Disk very full"}, headers=responder["headers"]
    )
    again = post(client, responder, "/incidents", {"title": "Disk full"})
    assert again.json == first.json and again.json["title"] == "Disk full"
    assert count(db_conn, "incidents") == 1


def test_without_a_key_every_post_writes(client, db_conn, responder):
    for _ in range(2):
        assert post(client, responder, "/incidents", {"title": "t"}, key=None).status_code == 201
    assert count(db_conn, "incidents") == 2
    assert count(db_conn, "idempotency_keys") == 0


@pytest.mark.parametrize(
    "second_path, second_body",
    [
        ("/incidents", {"title": "Something else"}),
        ("/incidents", {"title": "Disk full", "severity": "high"}),
        ("/categories", {"name": "Disk full"}),
    ],
)
def test_same_key_for_a_different_request_is_422_and_writes_nothing(
    client, db_conn, admin, second_path, second_body
):
    assert post(client, admin, "/incidents", {"title": "Disk full"}).status_code == 201
    result = post(client, admin, second_path, second_body)
    assert result.status_code == 422
    assert result.headers["content-type"] == "application/problem+json"
    assert "Idempotency-Key" in result.json["detail"]
    assert (count(db_conn, "incidents"), count(db_conn, "categories")) == (1, 0)


def test_the_same_body_spelled_differently_is_the_same_request(client, db_conn, responder):
    headers = {**responder["headers"], "Idempotency-Key": KEY, "Content-Type": "application/json"}
    first = client.simulate_post("/incidents", body='{"title": "t", "severity": "high"}', headers=headers)
    again = client.simulate_post("/incidents", body='{ "severity":"high",\n "title":"t" }', headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json
    assert count(db_conn, "incidents") == 1


def test_keys_are_scoped_per_user(client, db_conn, make_user):
    ana, bob = make_user(), make_user()
    first = post(client, ana, "/incidents", {"title": "Ana's"})
    second = post(client, bob, "/incidents", {"title": "Bob's"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json["reporter_id"] == bob["id"] and "idempotent-replayed" not in second.headers
    assert count(db_conn, "incidents") == 2


def test_a_failed_request_is_not_stored_and_may_be_retried(client, db_conn, admin, make_category):
    taken = make_category("storage")
    assert post(client, admin, "/categories", {"name": "Storage"}).status_code == 409
    assert post(client, admin, "/incidents", {"title": "t", "category_ids": [999]}).status_code == 422
    assert (
        count(db_conn, "idempotency_keys"),
        count(db_conn, "incidents"),
        count(db_conn, "incident_history"),
    ) == (0, 0, 0)
    client.simulate_patch(f"/categories/{taken['id']}", json={"name": "disks"}, headers=admin["headers"])
    assert post(client, admin, "/categories", {"name": "Storage"}).status_code == 201
    assert count(db_conn, "categories") == 2


def test_a_key_older_than_24_hours_starts_afresh(client, db_conn, responder):
    first = post(client, responder, "/incidents", {"title": "t"})
    db_conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '24 hours 1 second'")
    again = post(client, responder, "/incidents", {"title": "t"})
    assert again.status_code == 201 and again.json["id"] != first.json["id"]
    assert "idempotent-replayed" not in again.headers
    assert count(db_conn, "incidents") == 2
    assert count(db_conn, "idempotency_keys") == 1


def test_a_concurrent_duplicate_is_409(app, client, db_conn, database_url, responder, make_incident):
    incident = make_incident(responder)
    path, body = f"/incidents/{incident['id']}/resolve", {"resolution": "rebooted"}
    headers = {**responder["headers"], "Idempotency-Key": KEY}

    async def first_then_duplicate():
        async with falcon.testing.ASGIConductor(app) as conductor:
            with row_locked(database_url, "incidents", incident["id"]):
                first = asyncio.create_task(conductor.simulate_post(path, json=body, headers=headers))
                await wait_for_lock_waiter(db_conn)
                duplicate = await conductor.simulate_post(path, json=body, headers=headers)
            return await first, duplicate

    first, duplicate = falcon.async_to_sync(first_then_duplicate)
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/problem+json"
    assert "in progress" in duplicate.json["detail"]
    assert first.status_code == 200 and first.json["status"] == "resolved"
    replay = post(client, responder, path, body)
    assert replay.json == first.json and replay.headers["idempotent-replayed"] == "true"
    actions = db_conn.execute("SELECT action FROM incident_history ORDER BY id").fetchall()
    assert [row["action"] for row in actions] == ["created", "resolved"]


async def wait_for_lock_waiter(db_conn, seconds=10):
    for _ in range(int(seconds / 0.05)):
        if lock_waiters(db_conn) == 1:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the first request never waited")


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "two words", "café", "tab\there"])
def test_a_malformed_key_is_400_and_writes_nothing(client, db_conn, responder, key):
    result = post(client, responder, "/incidents", {"title": "t"}, key=key)
    assert result.status_code == 400
    assert result.headers["content-type"] == "application/problem+json"
    assert count(db_conn, "incidents") == 0


@pytest.mark.parametrize("key", ["a", "x" * 255, "~!#$%&'*+-.^_`|0123456789"])
def test_keys_of_1_to_255_visible_characters_are_accepted(client, responder, key):
    assert post(client, responder, "/incidents", {"title": "t"}, key=key).status_code == 201
    assert (
        post(client, responder, "/incidents", {"title": "t"}, key=key).headers["idempotent-replayed"]
        == "true"
    )


def test_the_openapi_document_declares_the_key_on_every_post_but_login(client):
    paths = client.simulate_get("/openapi.json").json["paths"]
    declared = {
        (method, path)
        for path, item in paths.items()
        for method, op in item.items()
        if any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in op["parameters"])
    }
    assert declared == {
        ("post", "/alerts"),
        ("post", "/alerts/alertmanager"),
        ("post", "/incidents"),
        ("post", "/incidents/{incident_id}/comments"),
        ("post", "/incidents/{incident_id}/resolve"),
        ("post", "/users"),
        ("post", "/categories"),
        ("post", "/users/{user_id}/follow"),
        ("post", "/notifications/{notification_id}/read"),
        ("post", "/webhooks"),
    }


def test_follow_and_mark_read_honour_the_key_too(client, reporter, responder, make_incident, db_conn):
    headers = {**reporter["headers"], "Idempotency-Key": "follow-1"}
    first = client.simulate_post(f"/users/{responder['id']}/follow", headers=headers)
    again = client.simulate_post(f"/users/{responder['id']}/follow", headers=headers)
    assert first.status_code == again.status_code == 204
    assert again.headers.get("idempotent-replayed") == "true"
    other_path = client.simulate_post(f"/users/{responder['id'] + 1000}/follow", headers=headers)
    assert other_path.status_code == 422
    incident = make_incident(reporter)
    client.simulate_post(f"/incidents/{incident['id']}/resolve", headers=responder["headers"])
    notification = db_conn.execute("SELECT id FROM notifications").fetchone()["id"]
    read_headers = {**reporter["headers"], "Idempotency-Key": "read-1"}
    for _ in range(2):
        result = client.simulate_post(f"/notifications/{notification}/read", headers=read_headers)
        assert result.status_code == 204 and result.text == ""
