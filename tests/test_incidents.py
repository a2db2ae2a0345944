import pytest


def test_report_incident_returns_201_with_location_etag_and_representation(client, reporter, db_conn):
    result = client.simulate_post(
        "/incidents", json={"title": "DB down", "description": "pg"}, headers=reporter["headers"]
    )
    assert result.status_code == 201
    body = result.json
    assert result.headers["location"] == f"/incidents/{body['id']}"
    assert result.headers["etag"] == '"1"'
    assert body["title"] == "DB down" and body["description"] == "pg"
    assert body["status"] == "open" and body["severity"] == "medium"
    assert body["reporter_id"] == reporter["id"] and body["assignee_id"] is None
    assert body["categories"] == [] and body["version"] == 1
    assert body["acknowledged_at"] is None and body["resolved_at"] is None
    assert body["resolution"] is None and body["allowed_transitions"] == []
    assert body["created_at"].endswith("+00:00")
    row = db_conn.execute("SELECT title, reporter_id FROM incidents WHERE id = %s", [body["id"]]).fetchone()
    assert row == {"title": "DB down", "reporter_id": reporter["id"]}


def test_get_incident_and_conditional_get(client, reporter, make_incident):
    incident = make_incident(reporter)
    result = client.simulate_get(f"/incidents/{incident['id']}", headers=reporter["headers"])
    assert result.status_code == 200
    assert result.json == incident
    again = client.simulate_get(
        f"/incidents/{incident['id']}", headers={**reporter["headers"], "If-None-Match": '"1"'}
    )
    assert again.status_code == 304
    assert again.text == ""


def test_responder_moves_incident_through_statuses(client, reporter, responder, make_incident):
    incident = make_incident(reporter)
    url = f"/incidents/{incident['id']}"
    seen = client.simulate_get(url, headers=responder["headers"]).json
    assert seen["allowed_transitions"] == ["in_progress", "resolved", "closed"]

    progressing = client.simulate_patch(url, json={"status": "in_progress"}, headers=responder["headers"])
    assert progressing.status_code == 200
    assert progressing.json["acknowledged_at"] is not None
    assert progressing.json["version"] == 2
    assert progressing.headers["etag"] == '"2"'

    resolved = client.simulate_patch(
        url, json={"status": "resolved", "resolution": "restarted"}, headers=responder["headers"]
    ).json
    assert resolved["resolved_at"] is not None and resolved["resolution"] == "restarted"
    assert resolved["acknowledged_at"] == progressing.json["acknowledged_at"]

    reopened = client.simulate_patch(url, json={"status": "open"}, headers=responder["headers"]).json
    assert reopened["resolved_at"] is None
    assert reopened["resolution"] == "restarted"
    assert reopened["acknowledged_at"] == progressing.json["acknowledged_at"]


@pytest.mark.parametrize(
    "path, forbidden",
    [
        (["in_progress", "resolved", "closed"], "in_progress"),
        (["resolved"], "in_progress"),
        (["closed"], "resolved"),
    ],
)
def test_forbidden_transition_is_409_listing_allowed(
    client, reporter, responder, make_incident, path, forbidden
):
    incident = make_incident(reporter)
    url = f"/incidents/{incident['id']}"
    for status in path:
        assert (
            client.simulate_patch(url, json={"status": status}, headers=responder["headers"]).status_code
            == 200
        )
    result = client.simulate_patch(url, json={"status": forbidden}, headers=responder["headers"])
    assert result.status_code == 409
    assert result.headers["content-type"] == "application/problem+json"
    current = client.simulate_get(url, headers=responder["headers"]).json
    assert result.json["allowed_transitions"] == current["allowed_transitions"]
    assert forbidden not in current["allowed_transitions"]


def test_closed_to_open_clears_resolved_at_and_keeps_acknowledged_at(
    client, reporter, responder, make_incident
):
    url = f"/incidents/{make_incident(reporter)['id']}"
    closed = client.simulate_patch(url, json={"status": "closed"}, headers=responder["headers"]).json
    assert closed["acknowledged_at"] is not None and closed["resolved_at"] is None
    reopened = client.simulate_patch(url, json={"status": "open"}, headers=responder["headers"]).json
    assert reopened["status"] == "open" and reopened["acknowledged_at"] == closed["acknowledged_at"]


def test_stale_if_match_is_412_and_changes_nothing(client, reporter, make_incident, db_conn):
    incident = make_incident(reporter)
    url = f"/incidents/{incident['id']}"
    assert (
        client.simulate_patch(
            url, json={"title": "v2"}, headers={**reporter["headers"], "If-Match": '"1"'}
        ).status_code
        == 200
    )
    stale = client.simulate_patch(
        url, json={"title": "v3"}, headers={**reporter["headers"], "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert db_conn.execute(
        "SELECT title, version FROM incidents WHERE id = %s", [incident["id"]]
    ).fetchone() == {"title": "v2", "version": 2}
    weak = client.simulate_patch(
        url, json={"title": "v3"}, headers={**reporter["headers"], "If-Match": 'W/"2"'}
    )
    assert weak.status_code == 412
    star = client.simulate_patch(url, json={"title": "v3"}, headers={**reporter["headers"], "If-Match": "*"})
    assert star.status_code == 200 and star.json["version"] == 3


def test_patch_without_changes_keeps_version(client, reporter, make_incident):
    incident = make_incident(reporter, description="same")
    result = client.simulate_patch(
        f"/incidents/{incident['id']}", json={"description": "same"}, headers=reporter["headers"]
    )
    assert result.status_code == 200 and result.json["version"] == 1


def test_put_replaces_every_writable_field(client, reporter, responder, make_incident, make_category):
    incident = make_incident(reporter)
    cat = make_category("network")
    body = {
        "title": "New",
        "description": "d",
        "status": "in_progress",
        "severity": "critical",
        "assignee_id": responder["id"],
        "category_ids": [cat["id"]],
        "resolution": None,
    }
    result = client.simulate_put(f"/incidents/{incident['id']}", json=body, headers=responder["headers"])
    assert result.status_code == 200
    got = result.json
    assert {k: got[k] for k in body if k != "category_ids"} == {
        k: v for k, v in body.items() if k != "category_ids"
    }
    assert got["categories"] == [{"id": cat["id"], "name": "network"}]
    missing = client.simulate_put(
        f"/incidents/{incident['id']}", json={"title": "x"}, headers=responder["headers"]
    )
    assert missing.status_code == 422
    assert {e["pointer"] for e in missing.json["errors"]} == {
        "#/description",
        "#/status",
        "#/severity",
        "#/assignee_id",
        "#/category_ids",
        "#/resolution",
    }


def test_categories_set_through_category_ids(client, responder, make_incident, make_category, db_conn):
    a, b, c = make_category("a"), make_category("b"), make_category("c")
    incident = make_incident(responder, category_ids=[a["id"], b["id"]])
    assert [x["id"] for x in incident["categories"]] == [a["id"], b["id"]]
    url = f"/incidents/{incident['id']}"
    changed = client.simulate_patch(
        url, json={"category_ids": [c["id"], b["id"]]}, headers=responder["headers"]
    ).json
    assert [x["id"] for x in changed["categories"]] == [b["id"], c["id"]]
    cleared = client.simulate_patch(url, json={"category_ids": []}, headers=responder["headers"]).json
    assert cleared["categories"] == []
    assert db_conn.execute("SELECT count(*) AS n FROM incident_categories").fetchone()["n"] == 0


def test_unknown_category_ids_are_422_with_pointers_and_write_nothing(
    client, responder, make_category, db_conn
):
    a = make_category("a")
    result = client.simulate_post(
        "/incidents", json={"title": "t", "category_ids": [a["id"], 999, 1000]}, headers=responder["headers"]
    )
    assert result.status_code == 422
    assert [e["pointer"] for e in result.json["errors"]] == ["#/category_ids/1", "#/category_ids/2"]
    assert db_conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"] == 0


def test_assignee_must_exist_and_be_active(client, responder, make_user, db_conn):
    inactive = make_user("responder", active=False)
    for assignee_id in (inactive["id"], 999999):
        result = client.simulate_post(
            "/incidents", json={"title": "t", "assignee_id": assignee_id}, headers=responder["headers"]
        )
        assert result.status_code == 422
        assert result.json["errors"][0]["pointer"] == "#/assignee_id"
    assert db_conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"] == 0


def test_assign_and_unassign(client, reporter, responder, make_incident):
    url = f"/incidents/{make_incident(reporter)['id']}"
    assigned = client.simulate_patch(url, json={"assignee_id": responder["id"]}, headers=responder["headers"])
    assert assigned.json["assignee_id"] == responder["id"]
    unassigned = client.simulate_patch(
        url,
        json={"assignee_id": None},
        headers=responder["headers"],
    )
    assert unassigned.json["assignee_id"] is None


def test_merge_patch_content_type_accepted_for_patch_only(client, reporter, make_incident):
    url = f"/incidents/{make_incident(reporter)['id']}"
    headers = {**reporter["headers"], "Content-Type": "application/merge-patch+json"}
    assert client.simulate_patch(url, body='{"title": "merged"}', headers=headers).json["title"] == "merged"
    assert client.simulate_post("/incidents", body='{"title": "x"}', headers=headers).status_code == 415


def test_delete_incident_admin_only_and_cascades_comments(client, reporter, admin, make_incident, db_conn):
    incident = make_incident(reporter)
    url = f"/incidents/{incident['id']}"
    client.simulate_post(url + "/comments", json={"content": "hi"}, headers=reporter["headers"])
    assert client.simulate_delete(url, headers=reporter["headers"]).status_code == 403
    assert client.simulate_delete(url, headers=admin["headers"]).status_code == 204
    assert client.simulate_get(url, headers=admin["headers"]).status_code == 404
    assert client.simulate_delete(url, headers=admin["headers"]).status_code == 404
    assert db_conn.execute("SELECT count(*) AS n FROM comments").fetchone()["n"] == 0


@pytest.mark.parametrize(
    "path",
    ["/incidents/abc", "/incidents/0", "/incidents/9223372036854775808", "/incidents/-1", "/incidents/1.5"],
)
def test_non_integer_or_out_of_range_ids_are_404(client, reporter, path):
    result = client.simulate_get(path, headers=reporter["headers"])
    assert result.status_code == 404
    assert result.headers["content-type"] == "application/problem+json"


def test_delete_with_a_stale_if_match_is_412_and_deletes_nothing(client, admin, make_incident, db_conn):
    incident = make_incident(admin)
    url = f"/incidents/{incident['id']}"
    client.simulate_patch(url, json={"title": "changed"}, headers=admin["headers"])
    stale = client.simulate_delete(url, headers={**admin["headers"], "If-Match": '"1"'})
    assert stale.status_code == 412
    assert db_conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"] == 1
    current = client.simulate_get(url, headers=admin["headers"]).headers["etag"]
    assert client.simulate_delete(url, headers={**admin["headers"], "If-Match": current}).status_code == 204
