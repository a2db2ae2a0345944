import datetime

import pytest


def ids(result):
    return [item["id"] for item in result.json["items"]]


def test_default_order_is_newest_first_with_allowed_transitions(client, reporter, responder, make_incident):
    made = [make_incident(reporter)["id"] for _ in range(3)]
    result = client.simulate_get("/incidents", headers=responder["headers"])
    assert result.status_code == 200
    assert ids(result) == made[::-1]
    assert result.json["next_cursor"] is None
    assert "link" not in result.headers
    assert result.json["items"][0]["allowed_transitions"] == ["in_progress", "resolved", "closed"]


def test_filters(client, reporter, responder, make_incident, make_category):
    cat = make_category()
    low = make_incident(responder, severity="low", category_ids=[cat["id"]])
    high = make_incident(reporter, severity="high")
    assigned = make_incident(responder, severity="critical", assignee_id=responder["id"])
    client.simulate_patch(f"/incidents/{high['id']}", json={"status": "closed"}, headers=responder["headers"])

    def query(qs):
        result = client.simulate_get("/incidents", query_string=qs, headers=reporter["headers"])
        assert result.status_code == 200, result.json
        return sorted(ids(result))

    assert query("severity=low,critical") == sorted([low["id"], assigned["id"]])
    assert query("status=closed") == [high["id"]]
    assert query("status=open&severity=high") == []
    assert query(f"reporter_id={reporter['id']}") == [high["id"]]
    assert query(f"assignee_id={responder['id']}") == [assigned["id"]]
    assert query("assignee_id=none") == sorted([low["id"], high["id"]])
    assert query(f"category_id={cat['id']}") == [low["id"]]
    now = datetime.datetime.now(datetime.UTC)
    assert query(
        f"created_after={(now - datetime.timedelta(hours=1)).isoformat().replace('+00:00', 'Z')}"
    ) == sorted([low["id"], high["id"], assigned["id"]])
    assert (
        query(f"created_before={(now - datetime.timedelta(hours=1)).isoformat().replace('+', '%2B')}") == []
    )


def test_a_filtered_list_pages_in_order_whatever_its_size(client, reporter, responder, make_incident):
    severities = ["high", "low", "high", "critical", "high"]
    made = [make_incident(reporter, severity=severities[i % 5])["id"] for i in range(15)]
    client.simulate_patch(f"/incidents/{made[0]}", json={"status": "closed"}, headers=responder["headers"])
    open_high = [i for n, i in enumerate(made) if severities[n % 5] == "high" and n > 0][::-1]
    for qs in ("status=open&severity=high", "status=open,in_progress&severity=high,medium", "severity=high"):
        for limit in (1, 3, 12, 20):
            seen, cursor = [], None
            while True:
                page = f"{qs}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
                result = client.simulate_get("/incidents", query_string=page, headers=reporter["headers"])
                assert result.status_code == 200 and len(result.json["items"]) <= limit
                seen += ids(result)
                cursor = result.json["next_cursor"]
                if cursor is None:
                    break
            assert seen == (open_high if "status" in qs else [*open_high, made[0]]), (qs, limit)


def test_sort_by_severity_rank_with_id_ties(client, reporter, make_incident):
    made = {sev: make_incident(reporter, severity=sev)["id"] for sev in ["high", "low", "critical", "medium"]}
    extra_low = make_incident(reporter, severity="low")["id"]
    asc = client.simulate_get("/incidents", query_string="sort=severity", headers=reporter["headers"])
    assert ids(asc) == [made["low"], extra_low, made["medium"], made["high"], made["critical"]]
    desc = client.simulate_get("/incidents", query_string="sort=-severity", headers=reporter["headers"])
    assert ids(desc) == [made["critical"], made["high"], made["medium"], extra_low, made["low"]]


@pytest.mark.parametrize(
    "sort", ["created_at", "-created_at", "updated_at", "-updated_at", "severity", "-severity"]
)
def test_walk_neither_repeats_nor_skips_while_rows_are_inserted(client, reporter, make_incident, sort):
    severities = ["low", "medium", "high", "critical"]
    existing = {make_incident(reporter, severity=severities[i % 4])["id"] for i in range(23)}
    seen, cursor, pages = [], None, 0
    while True:
        qs = f"limit=5&sort={sort}" + (f"&cursor={cursor}" if cursor else "")
        result = client.simulate_get("/incidents", query_string=qs, headers=reporter["headers"])
        assert result.status_code == 200
        seen += ids(result)
        cursor = result.json["next_cursor"]
        pages += 1
        make_incident(reporter, severity=severities[pages % 4])  # inserted between pages
        if cursor is None:
            break
        assert f"cursor={cursor}" in result.headers["link"] and 'rel="next"' in result.headers["link"]
    assert len(seen) == len(set(seen))
    assert existing <= set(seen)


def test_cursor_from_another_sort_or_garbage_is_400(client, reporter, make_incident):
    for _ in range(3):
        make_incident(reporter)
    cursor = client.simulate_get("/incidents", query_string="limit=1", headers=reporter["headers"]).json[
        "next_cursor"
    ]
    for qs in (f"cursor={cursor}&sort=severity", "cursor=garbage", "cursor=", "cursor=W10"):
        result = client.simulate_get("/incidents", query_string=qs, headers=reporter["headers"])
        assert result.status_code == 400, qs
        assert result.json["errors"] == [
            {"parameter": "cursor", "detail": "is not a cursor given by this list"}
        ]


@pytest.mark.parametrize(
    "qs, parameter",
    [
        ("colour=red", "colour"),
        ("status=opened", "status"),
        ("severity=", "severity"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("sort=title", "sort"),
        ("reporter_id=0", "reporter_id"),
        ("assignee_id=nobody", "assignee_id"),
        ("created_after=yesterday", "created_after"),
        ("created_after=2026-01-01T00:00:00", "created_after"),
        ("created_after=2026-01-01%0000:00:00Z", "created_after"),
        ("created_before=2026-01-01T00:00:00Z%00", "created_before"),
        ("limit=5&limit=6", "limit"),
        ("category_id=99999999999999999999", "category_id"),
    ],
)
def test_bad_query_parameters_are_400_naming_the_parameter(client, reporter, qs, parameter):
    result = client.simulate_get("/incidents", query_string=qs, headers=reporter["headers"])
    assert result.status_code == 400
    assert result.headers["content-type"] == "application/problem+json"
    assert result.json["errors"][0]["parameter"] == parameter


def test_user_incidents_by_relation(client, reporter, responder, make_incident, make_user):
    other = make_user("reporter")
    reported = make_incident(reporter)
    assigned = make_incident(
        other,
    )
    client.simulate_patch(
        f"/incidents/{assigned['id']}", json={"assignee_id": reporter["id"]}, headers=responder["headers"]
    )
    make_incident(other)
    both = make_incident(reporter)  # reported by and assigned to the user: listed once
    client.simulate_patch(
        f"/incidents/{both['id']}", json={"assignee_id": reporter["id"]}, headers=responder["headers"]
    )
    url = f"/users/{reporter['id']}/incidents"

    def query(qs=""):
        result = client.simulate_get(url, query_string=qs, headers=other["headers"])
        assert result.status_code == 200, result.json
        return sorted(ids(result))

    assert query() == sorted([reported["id"], assigned["id"], both["id"]])
    assert query("relation=reporter") == sorted([reported["id"], both["id"]])
    assert query("relation=assignee") == sorted([assigned["id"], both["id"]])
    assert query("relation=assignee&status=closed") == []
    assert client.simulate_get("/users/999/incidents", headers=other["headers"]).status_code == 404
    assert (
        client.simulate_get(url, query_string="relation=friend", headers=other["headers"]).status_code == 400
    )


def test_category_incidents(client, responder, make_incident, make_category):
    cat = make_category()
    inside = make_incident(responder, category_ids=[cat["id"]])
    make_incident(responder)
    result = client.simulate_get(f"/categories/{cat['id']}/incidents", headers=responder["headers"])
    assert ids(result) == [inside["id"]]
    assert client.simulate_get("/categories/999/incidents", headers=responder["headers"]).status_code == 404
    bad = client.simulate_get(
        f"/categories/{cat['id']}/incidents", query_string="category_id=1", headers=responder["headers"]
    )
    assert bad.status_code == 400


@pytest.mark.parametrize("sort", ["created_at", "-created_at"])
def test_category_walk_keeps_created_at_order_when_created_at_is_edited(
    client, db_conn, reporter, responder, make_incident, make_category, sort
):
    cat, other = make_category(), make_category()
    made = [
        make_incident(reporter, category_ids=[cat["id"], other["id"]] if n % 2 else [cat["id"]])["id"]
        for n in range(7)
    ]
    make_incident(reporter, category_ids=[other["id"]])
    client.simulate_patch(f"/incidents/{made[3]}", json={"status": "closed"}, headers=responder["headers"])
    # created_at edited by hand (psql): the later reported, the older, with ties in pairs
    hours_back = {incident_id: n // 2 for n, incident_id in enumerate(made)}
    for incident_id, hours in hours_back.items():
        db_conn.execute(
            "UPDATE incidents SET created_at = '2026-01-01Z'::timestamptz - %s * interval '1 hour' "
            "WHERE id = %s",
            (hours, incident_id),
        )
    oldest_first = sorted(made, key=lambda incident_id: (-hours_back[incident_id], incident_id))
    expected = oldest_first if sort == "created_at" else oldest_first[::-1]

    def walk(qs):
        seen, cursor = [], None
        for _ in range(len(made)):
            result = client.simulate_get(
                f"/categories/{cat['id']}/incidents",
                headers=reporter["headers"],
                query_string=f"limit=2&sort={sort}{qs}" + (f"&cursor={cursor}" if cursor else ""),
            )
            assert result.status_code == 200, result.json
            seen += ids(result)
            cursor = result.json["next_cursor"]
            if cursor is None:
                return seen
        raise AssertionError(f"no last page after {len(made)} pages: {seen}")

    assert walk("") == expected
    assert walk("&status=open") == [i for i in expected if i != made[3]]
    assert walk("&created_before=2026-01-01T00:00:00Z") == [i for i in expected if hours_back[i] > 0]
    assert walk("&created_after=2025-12-31T23:00:00Z&created_before=2026-01-01T00:00:00Z") == [
        i for i in expected if hours_back[i] == 1
    ]
    links = db_conn.execute(
        "SELECT count(*) AS n FROM incident_categories ic JOIN incidents i ON i.id = ic.incident_id "
        "WHERE ic.incident_created_at <> i.created_at"
    ).fetchone()
    assert links["n"] == 0
