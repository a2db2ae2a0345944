"""Comments on incidents: create, read, oldest-first keyset pages, validation, 404s."""

import statistics
import time
import urllib.parse

import pytest

from tests.test_errors import cursor, pointers, post_json, problem

COMMENT_KEYS = {"id", "incident_id", "author_id", "content", "created_at"}


def url(incident):
    return f"/incidents/{incident['id']}/comments"


def insert_comments(db_conn, incident, author, ages):
    """Comments created `ages` seconds ago, in that insertion order; their ids."""
    return [
        db_conn.execute(
            "INSERT INTO comments (incident_id, author_id, content, created_at) "
            "VALUES (%s, %s, %s, now() - make_interval(secs => %s)) RETURNING id",
            [incident["id"], author["id"], f"comment {n}", age],
        ).fetchone()["id"]
        for n, age in enumerate(ages)
    ]


def expected_order(db_conn, incident):
    return [
        row["id"]
        for row in db_conn.execute(
            "SELECT id FROM comments WHERE incident_id = %s ORDER BY created_at, id", [incident["id"]]
        )
    ]


def walk(client, user, path, limit, between_pages=lambda: None):
    """Every id of a list, following each page's Link header; checks next_cursor agrees with it."""
    seen, target = [], f"{path}?limit={limit}"
    while target:
        parts = urllib.parse.urlsplit(target)
        result = client.simulate_get(parts.path, query_string=parts.query, headers=user["headers"])
        assert result.status_code == 200, result.text
        seen += [item["id"] for item in result.json["items"]]
        next_cursor = result.json["next_cursor"]
        link = result.headers.get("link")
        if next_cursor is None:
            assert link is None
            target = None
        else:
            assert len(result.json["items"]) == limit
            assert link.endswith('>; rel="next"') and f"cursor={next_cursor}" in link
            target = link[1 : link.index(">")]
            between_pages()
    return seen


def test_post_comment_is_201_with_location_that_get_answers(
    client, reporter, responder, make_incident, db_conn
):
    incident = make_incident(reporter)
    result = client.simulate_post(
        url(incident), json={"content": "Restarting the primary."}, headers=responder["headers"]
    )
    assert result.status_code == 201
    comment = result.json
    assert set(comment) == COMMENT_KEYS
    assert result.headers["location"] == f"/incidents/{incident['id']}/comments/{comment['id']}"
    assert comment["incident_id"] == incident["id"] and comment["author_id"] == responder["id"]
    assert comment["content"] == "Restarting the primary."
    assert comment["created_at"].endswith("+00:00")
    got = client.simulate_get(result.headers["location"], headers=reporter["headers"])
    assert got.status_code == 200 and got.json == comment
    rows = db_conn.execute("SELECT id, incident_id, author_id, content FROM comments").fetchall()
    assert rows == [
        {
            "id": comment["id"],
            "incident_id": incident["id"],
            "author_id": responder["id"],
            "content": "Restarting the primary.",
        }
    ]


@pytest.mark.parametrize("role", ["reporter", "responder", "admin"])
def test_any_role_comments_on_anyones_incident(client, make_user, reporter, make_incident, role):
    incident = make_incident(reporter)
    author = make_user(role)
    result = client.simulate_post(url(incident), json={"content": "me too"}, headers=author["headers"])
    assert result.status_code == 201 and result.json["author_id"] == author["id"]


@pytest.mark.parametrize(
    "member, value",
    [
        ("author_id", None),
        ("incident_id", None),
        ("id", 1),
        ("created_at", "2020-01-01T00:00:00+00:00"),
    ],
)
def test_read_only_members_cannot_be_mass_assigned(
    client, reporter, make_user, make_incident, db_conn, member, value
):
    incident, other = make_incident(reporter), make_user("admin")
    value = {"author_id": other["id"], "incident_id": make_incident(other)["id"]}.get(member, value)
    result = client.simulate_post(
        url(incident), json={"content": "x", member: value}, headers=reporter["headers"]
    )
    assert pointers(result) == [f"#/{member}"]
    assert db_conn.execute("SELECT count(*) AS n FROM comments").fetchone()["n"] == 0


@pytest.mark.parametrize(
    "body, expected",
    [
        ({}, ["#/content"]),
        ({"content": ""}, ["#/content"]),
        ({"content": " \n\t\u3000"}, ["#/content"]),
        ({"content": "x" * 10_001}, ["#/content"]),
        ({"content": 5}, ["#/content"]),
        ({"content": None}, ["#/content"]),
        ({"content": ["text"]}, ["#/content"]),
        ({"content": "a\u0000b"}, ["#/content"]),
        ({"content": "\ud800"}, ["#/content"]),
        ({"content": "ok", "extra": 1}, ["#/extra"]),
        ({"contents": "typo"}, ["#/content", "#/contents"]),
        ([], ["#"]),
    ],
)
def test_invalid_comment_is_422_naming_every_bad_member(
    client, reporter, make_incident, db_conn, body, expected
):
    result = post_json(client, reporter, body, url(make_incident(reporter)))
    assert pointers(result) == expected
    assert db_conn.execute("SELECT count(*) AS n FROM comments").fetchone()["n"] == 0


@pytest.mark.parametrize(
    "content",
    [
        "x",
        "x" * 10_000,
        "🔥" * 10_000,
        "'; DROP TABLE comments; --",
        "e\u0301 مرحبا 👩‍👩‍👧",
        "  padded\n",
    ],
)
def test_valid_content_is_stored_verbatim(client, reporter, make_incident, db_conn, content):
    result = client.simulate_post(
        url(make_incident(reporter)), json={"content": content}, headers=reporter["headers"]
    )
    assert result.status_code == 201 and result.json["content"] == content
    assert db_conn.execute("SELECT content FROM comments").fetchone()["content"] == content


def test_comments_of_a_missing_incident_are_404(client, reporter, db_conn):
    problem(client.simulate_get("/incidents/999999/comments", headers=reporter["headers"]), 404)
    posted = client.simulate_post(
        "/incidents/999999/comments", json={"content": "x"}, headers=reporter["headers"]
    )
    problem(posted, 404)
    assert db_conn.execute("SELECT count(*) AS n FROM comments").fetchone()["n"] == 0


def test_a_comment_is_found_only_under_its_own_incident(client, reporter, make_incident):
    first, second = make_incident(reporter), make_incident(reporter)
    comment = client.simulate_post(url(first), json={"content": "x"}, headers=reporter["headers"]).json
    for path in (
        f"{url(second)}/{comment['id']}",
        f"{url(first)}/{comment['id'] + 1}",
        f"{url(first)}/abc",
        f"/incidents/999999/comments/{comment['id']}",
    ):
        problem(client.simulate_get(path, headers=reporter["headers"]), 404)


def test_comments_need_a_token(client, reporter, make_incident):
    path = url(make_incident(reporter))
    for result in (client.simulate_get(path), client.simulate_post(path, json={"content": "x"})):
        problem(result, 401)
        assert result.headers["www-authenticate"].startswith("Bearer")


def test_list_is_oldest_first_not_in_id_order(client, reporter, make_incident, db_conn):
    incident, other = make_incident(reporter), make_incident(reporter)
    ids = insert_comments(db_conn, incident, reporter, [60, 3600, 1, 3600])
    insert_comments(db_conn, other, reporter, [7200])
    result = client.simulate_get(url(incident), headers=reporter["headers"])
    assert result.status_code == 200
    assert [c["id"] for c in result.json["items"]] == [ids[1], ids[3], ids[0], ids[2]]
    assert all(set(c) == COMMENT_KEYS and c["incident_id"] == incident["id"] for c in result.json["items"])
    assert result.json["next_cursor"] is None and "link" not in result.headers


def test_list_of_an_incident_without_comments_is_empty(client, reporter, make_incident):
    result = client.simulate_get(url(make_incident(reporter)), headers=reporter["headers"])
    assert result.status_code == 200 and result.json == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 200])
def test_walk_neither_repeats_nor_skips_with_equal_timestamps(
    client, reporter, make_incident, db_conn, limit
):
    incident = make_incident(reporter)
    insert_comments(db_conn, incident, reporter, [5, 10, 10, 10, 0, 10, 5])
    assert walk(client, reporter, url(incident), limit) == expected_order(db_conn, incident)


def test_walk_is_stable_while_comments_are_added_and_deleted(client, reporter, make_incident, db_conn):
    incident = make_incident(reporter)
    existing = insert_comments(db_conn, incident, reporter, [60, 50, 40, 30, 20, 10])
    added, deleted = [], existing[4]

    def meanwhile():
        added.append(
            client.simulate_post(url(incident), json={"content": "new"}, headers=reporter["headers"]).json[
                "id"
            ]
        )
        db_conn.execute("DELETE FROM comments WHERE id = %s", [deleted])

    seen = walk(client, reporter, url(incident), 2, meanwhile)
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i in existing] == [i for i in existing if i != deleted]
    assert set(seen) - set(existing) <= set(added)


def test_default_page_is_50(client, reporter, make_incident, db_conn):
    incident = make_incident(reporter)
    db_conn.execute(
        "INSERT INTO comments (incident_id, author_id, content) "
        "SELECT %s, %s, 'c' || n FROM generate_series(1, 51) AS n",
        [incident["id"], reporter["id"]],
    )
    first = client.simulate_get(url(incident), headers=reporter["headers"]).json
    assert len(first["items"]) == 50 and first["next_cursor"]
    rest = client.simulate_get(
        url(incident), query_string=f"cursor={first['next_cursor']}", headers=reporter["headers"]
    ).json
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("limit=2&limit=3", "limit"),
        ("cursor=garbage", "cursor"),
        ("cursor=" + cursor("2026-01-01T00:00:00+00:00"), "cursor"),
        ("cursor=" + cursor("yesterday", 1), "cursor"),
        ("cursor=" + cursor("2026-01-01T00:00:00", 1), "cursor"),
        ("cursor=" + cursor("2026-01-01T00:00:00+00:00", 0), "cursor"),
        ("cursor=" + cursor("2026-01-01T00:00:00+00:00", 1.0), "cursor"),
        ("cursor=" + cursor("2026-01-01T00:00:00+00:00", 2**63), "cursor"),
        ("sort=created_at", "sort"),
        ("page=2", "page"),
    ],
)
def test_bad_query_parameters_are_400(client, reporter, make_incident, query, parameter):
    result = client.simulate_get(
        url(make_incident(reporter)), query_string=query, headers=reporter["headers"]
    )
    assert [e["parameter"] for e in problem(result, 400)["errors"]] == [parameter]


def test_cursor_from_another_incident_stays_on_this_incident(client, reporter, make_incident, db_conn):
    first, second = make_incident(reporter), make_incident(reporter)
    insert_comments(db_conn, first, reporter, [30, 20, 10])
    mine = insert_comments(db_conn, second, reporter, [25, 5])
    page = client.simulate_get(url(first), query_string="limit=1", headers=reporter["headers"]).json
    other = client.simulate_get(
        url(second), query_string=f"cursor={page['next_cursor']}", headers=reporter["headers"]
    )
    assert other.status_code == 200
    assert [c["id"] for c in other.json["items"]] == mine
    assert other.json["next_cursor"] is None


def long_comment(n):
    """9,000 characters of words no other comment holds, as a long log excerpt would be."""
    return " ".join(f"w{n:03d}x{k:04d}" for k in range(900))[:9000]


def relation_sizes(db_conn):
    return db_conn.execute(
        "SELECT pg_total_relation_size('comments') + pg_total_relation_size('incidents') AS bytes"
    ).fetchone()["bytes"]


def timed_comment(client, user, incident):
    started = time.perf_counter()
    result = client.simulate_post(url(incident), json={"content": "ack"}, headers=user["headers"])
    elapsed = time.perf_counter() - started
    assert result.status_code == 201, result.json
    return elapsed


def test_a_comment_costs_the_same_whatever_its_incident_already_holds(
    client, db_conn, reporter, make_incident
):
    """60 comments of 9,000 characters made every later comment on that incident rewrite its
    whole search vector (megabytes, with every index entry): a one-word comment there must take
    about as long as on a fresh incident, and write about its own size."""
    loaded, fresh = make_incident(reporter, title="Loaded"), make_incident(reporter, title="Fresh")
    for n in range(60):
        db_conn.execute(
            "INSERT INTO comments (incident_id, author_id, content) VALUES (%s, %s, %s)",
            [loaded["id"], reporter["id"], long_comment(n)],
        )
    timings = {"loaded": [], "fresh": []}
    for _ in range(15):  # interleaved, so that the machine's load weighs on both alike
        timings["loaded"].append(timed_comment(client, reporter, loaded))
        timings["fresh"].append(timed_comment(client, reporter, fresh))
    loaded_median, fresh_median = (statistics.median(t) for t in timings.values())
    assert loaded_median < 2 * fresh_median, timings
    before = relation_sizes(db_conn)
    for _ in range(15):
        timed_comment(client, reporter, loaded)
    growth = relation_sizes(db_conn) - before
    assert growth <= 15 * 16384, f"{growth:,} bytes for 15 comments"
