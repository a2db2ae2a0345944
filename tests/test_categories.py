"""Categories: anyone reads, admins write, names unique case-insensitively, deletion keeps incidents."""

import pytest

from tests.test_comments import walk
from tests.test_errors import cursor, pointers, post_json, problem

CATEGORY_KEYS = {"id", "name", "created_at"}


def names(db_conn):
    return [row["name"] for row in db_conn.execute("SELECT name FROM categories ORDER BY id")]


def test_admin_creates_category_with_location(client, admin, reporter, db_conn):
    result = client.simulate_post("/categories", json={"name": "Network"}, headers=admin["headers"])
    assert result.status_code == 201
    category = result.json
    assert set(category) == CATEGORY_KEYS and category["name"] == "Network"
    assert category["created_at"].endswith("+00:00")
    assert result.headers["location"] == f"/categories/{category['id']}"
    got = client.simulate_get(result.headers["location"], headers=reporter["headers"])
    assert got.status_code == 200 and got.json == category
    assert names(db_conn) == ["Network"]


@pytest.mark.parametrize("role", ["reporter", "responder", "admin"])
def test_every_role_reads_categories(client, make_user, make_category, role):
    made = make_category("Database")
    user = make_user(role)
    listed = client.simulate_get("/categories", headers=user["headers"])
    assert listed.status_code == 200
    assert [c["name"] for c in listed.json["items"]] == ["Database"] and listed.json["next_cursor"] is None
    item = client.simulate_get(f"/categories/{made['id']}", headers=user["headers"])
    assert item.status_code == 200 and item.json["name"] == "Database"


@pytest.mark.parametrize("role", ["reporter", "responder"])
def test_only_admins_write(client, make_user, make_category, db_conn, role):
    headers = make_user(role)["headers"]
    category = make_category("Database")
    path = f"/categories/{category['id']}"
    problem(client.simulate_post("/categories", json={"name": "Network"}, headers=headers), 403)
    problem(client.simulate_patch(path, json={"name": "Renamed"}, headers=headers), 403)
    problem(client.simulate_delete(path, headers=headers), 403)
    assert names(db_conn) == ["Database"]


def test_categories_need_a_token(client, make_category, db_conn):
    category = make_category("Database")
    for result in (
        client.simulate_get("/categories"),
        client.simulate_get(f"/categories/{category['id']}"),
        client.simulate_post("/categories", json={"name": "Network"}),
        client.simulate_delete(f"/categories/{category['id']}"),
    ):
        problem(result, 401)
    assert names(db_conn) == ["Database"]


@pytest.mark.parametrize("name", ["Network", "network", "NETWORK", "nEtWoRk"])
def test_duplicate_name_is_409_case_insensitively(client, admin, make_category, db_conn, name):
    make_category("Network")
    result = client.simulate_post("/categories", json={"name": name}, headers=admin["headers"])
    assert [e["pointer"] for e in problem(result, 409)["errors"]] == ["#/name"]
    assert names(db_conn) == ["Network"]


def test_renaming_onto_another_name_is_409_but_changing_own_case_is_fine(
    client, admin, make_category, db_conn
):
    make_category("Network")
    other = make_category("Database")
    path = f"/categories/{other['id']}"
    clash = client.simulate_patch(path, json={"name": "NETWORK"}, headers=admin["headers"])
    assert [e["pointer"] for e in problem(clash, 409)["errors"]] == ["#/name"]
    assert names(db_conn) == ["Network", "Database"]
    own = client.simulate_patch(path, json={"name": "DATABASE"}, headers=admin["headers"])
    assert own.status_code == 200 and own.json["name"] == "DATABASE"
    assert names(db_conn) == ["Network", "DATABASE"]


@pytest.mark.parametrize(
    "body, expected",
    [
        ({}, ["#/name"]),
        ({"name": ""}, ["#/name"]),
        ({"name": " \t\n"}, ["#/name"]),
        ({"name": "x" * 51}, ["#/name"]),
        ({"name": 5}, ["#/name"]),
        ({"name": None}, ["#/name"]),
        ({"name": "a\u0000b"}, ["#/name"]),
        ({"name": "\ud800"}, ["#/name"]),
        ({"name": "ok", "id": 7}, ["#/id"]),
        ({"name": "ok", "created_at": "2020-01-01T00:00:00+00:00"}, ["#/created_at"]),
        ({"nme": "typo"}, ["#/name", "#/nme"]),
    ],
)
def test_invalid_name_is_422(client, admin, db_conn, body, expected):
    assert pointers(post_json(client, admin, body, "/categories")) == expected
    assert names(db_conn) == []


@pytest.mark.parametrize(
    "name", ["x", "x" * 50, "🔥" * 50, "'; DROP TABLE categories; --", "Réseau / Сеть", " padded "]
)
def test_valid_names_are_stored_verbatim(client, admin, db_conn, name):
    result = client.simulate_post("/categories", json={"name": name}, headers=admin["headers"])
    assert result.status_code == 201 and result.json["name"] == name
    assert names(db_conn) == [name]


@pytest.mark.parametrize("content_type", ["application/json", "application/merge-patch+json"])
def test_admin_renames_category(client, admin, make_category, db_conn, content_type):
    category = make_category("Netwrok")
    result = client.simulate_patch(
        f"/categories/{category['id']}",
        body=b'{"name": "Network"}',
        headers={**admin["headers"], "Content-Type": content_type},
    )
    assert result.status_code == 200
    assert result.json == {**category, "name": "Network", "created_at": category["created_at"].isoformat()}
    assert names(db_conn) == ["Network"]


def test_empty_patch_changes_nothing_and_invalid_patch_is_422(client, admin, make_category, db_conn):
    category = make_category("Network")
    path = f"/categories/{category['id']}"
    unchanged = client.simulate_patch(path, json={}, headers=admin["headers"])
    assert unchanged.status_code == 200 and unchanged.json["name"] == "Network"
    assert pointers(client.simulate_patch(path, json={"name": None, "id": 3}, headers=admin["headers"])) == [
        "#/id",
        "#/name",
    ]
    assert names(db_conn) == ["Network"]


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/categories/999999"),
        ("PATCH", "/categories/999999"),
        ("DELETE", "/categories/999999"),
        ("GET", "/categories/abc"),
        ("PATCH", "/categories/0"),
        ("GET", "/categories/999999/incidents"),
    ],
)
def test_missing_category_is_404(client, admin, method, path):
    problem(client.simulate_request(method, path, json={"name": "x"}, headers=admin["headers"]), 404)


def test_delete_removes_category_and_links_but_keeps_incidents(
    client, admin, responder, make_incident, make_category, db_conn
):
    doomed, kept = make_category("doomed"), make_category("kept")
    both = make_incident(responder, category_ids=[doomed["id"], kept["id"]])
    only = make_incident(responder, category_ids=[doomed["id"]])
    path = f"/categories/{doomed['id']}"
    result = client.simulate_delete(path, headers=admin["headers"])
    assert result.status_code == 204 and result.text == ""
    problem(client.simulate_get(path, headers=admin["headers"]), 404)
    problem(client.simulate_delete(path, headers=admin["headers"]), 404)
    problem(client.simulate_get(f"{path}/incidents", headers=admin["headers"]), 404)
    incidents = db_conn.execute("SELECT id FROM incidents ORDER BY id").fetchall()
    assert [row["id"] for row in incidents] == [both["id"], only["id"]]
    links = db_conn.execute("SELECT incident_id, category_id FROM incident_categories").fetchall()
    assert links == [{"incident_id": both["id"], "category_id": kept["id"]}]
    assert client.simulate_get(f"/incidents/{both['id']}", headers=admin["headers"]).json["categories"] == [
        {"id": kept["id"], "name": "kept"}
    ]
    assert client.simulate_get(f"/incidents/{only['id']}", headers=admin["headers"]).json["categories"] == []
    assert names(db_conn) == ["kept"]


def test_rename_shows_in_incidents(client, admin, responder, make_incident, make_category):
    category = make_category("Netwrok")
    incident = make_incident(responder, category_ids=[category["id"]])
    client.simulate_patch(f"/categories/{category['id']}", json={"name": "Network"}, headers=admin["headers"])
    got = client.simulate_get(f"/incidents/{incident['id']}", headers=responder["headers"]).json
    assert got["categories"] == [{"id": category["id"], "name": "Network"}]


@pytest.mark.parametrize("limit", [1, 2, 5, 7])
def test_walk_lists_every_category_once(client, reporter, make_category, limit):
    made = [make_category()["id"] for _ in range(7)]
    seen = walk(client, reporter, "/categories", limit)
    assert sorted(seen) == made


def test_walk_is_stable_while_categories_are_added_and_deleted(client, admin, make_category, db_conn):
    existing = [make_category()["id"] for _ in range(6)]
    deleted = existing[4]

    def meanwhile():
        client.simulate_post(
            "/categories", json={"name": f"new {len(names(db_conn))}"}, headers=admin["headers"]
        )
        db_conn.execute("DELETE FROM categories WHERE id = %s", [deleted])

    seen = walk(client, admin, "/categories", 2, meanwhile)
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i in existing] == [i for i in existing if i != deleted]


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=x", "limit"),
        ("limit=1&limit=2", "limit"),
        ("cursor=garbage", "cursor"),
        ("cursor=" + cursor(0), "cursor"),
        ("cursor=" + cursor("1"), "cursor"),
        ("cursor=" + cursor(1, 2), "cursor"),
        ("cursor=" + cursor(True), "cursor"),
        ("name=Network", "name"),
        ("sort=name", "sort"),
    ],
)
def test_bad_query_parameters_are_400(client, reporter, query, parameter):
    result = client.simulate_get("/categories", query_string=query, headers=reporter["headers"])
    assert [e["parameter"] for e in problem(result, 400)["errors"]] == [parameter]


@pytest.mark.parametrize("change", ["rename", "delete"])
def test_a_category_change_changes_its_incidents_etag_but_not_their_version(
    client, admin, reporter, make_category, make_incident, change
):
    category = make_category()
    incident = make_incident(admin, category_ids=[category["id"]])
    url = f"/incidents/{incident['id']}"
    before = client.simulate_get(url, headers=reporter["headers"])
    etag = before.headers["etag"]
    assert client.simulate_get(url, headers={**reporter["headers"], "If-None-Match": etag}).status_code == 304
    if change == "rename":
        client.simulate_patch(
            f"/categories/{category['id']}", json={"name": "renamed"}, headers=admin["headers"]
        )
    else:
        client.simulate_delete(f"/categories/{category['id']}", headers=admin["headers"])
    after = client.simulate_get(url, headers={**reporter["headers"], "If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    assert after.json["version"] == before.json["version"]
    stale = client.simulate_patch(url, json={"title": "x"}, headers={**admin["headers"], "If-Match": etag})
    assert stale.status_code == 412
    fresh = client.simulate_patch(
        url, json={"title": "x"}, headers={**admin["headers"], "If-Match": after.headers["etag"]}
    )
    assert fresh.status_code == 200
