import itertools

import psycopg
import pytest

from api.driver import numbered
from api.lists import CREATED_AT_SORTS, NO_FILTERS, PAGE_ROWS, SORTS, IncidentLists, incident_filters
from api.sql import QueryFileError, load_queries

LISTS = {"list_incidents": SORTS, "list_user_incidents": SORTS, "list_category_incidents": CREATED_AT_SORTS}


def all_query_texts(queries):
    """Every query's text, and each list's for every sort key, page, row count, token or not,
    and filter: no filter, each one alone (a status or severity of one value too), all of them."""
    lists = IncidentLists(queries)
    texts = {name: q.text for name, q in queries.items() if name not in LISTS}
    shapes = [(), *((name,) for name in [*NO_FILTERS, "one_status", "one_severity"]), tuple(NO_FILTERS)]
    for name, sorts in LISTS.items():
        for key in itertools.product(sorts, (True, False), shapes, PAGE_ROWS, (True, False)):
            texts[str((name, *key))] = lists.variant(name, *key).text
    return texts


def test_every_query_prepares_against_the_migrated_schema(db_conn, queries):
    texts = all_query_texts(queries)
    assert len(texts) > 30
    failures = []
    for name, text in texts.items():
        try:
            db_conn.execute(f"PREPARE check_query AS {numbered(text)[0]}")
            db_conn.execute("DEALLOCATE check_query")
        except psycopg.Error as ex:
            failures.append(f"{name}: {ex}")
    assert failures == []


@pytest.mark.parametrize(
    "content, message",
    [
        ("-- name: a :one\nSELECT 1\n-- name: a :one\nSELECT 2\n", "already defined"),
        ("-- name: a :sometimes\nSELECT 1\n", "malformed header"),
        ("-- name: BadName :one\nSELECT 1\n", "malformed header"),
        ("SELECT 1\n-- name: a :one\nSELECT 1\n", "before the first"),
        ("-- name: a :one\n-- only a comment\n", "has no SQL"),
        ("-- name: a :one\nSELECT 1 WHERE {:missing}\n", "includes no fragment"),
        ("-- name: a :one\nSELECT 1 WHERE {filter}\n", "neither a slot"),
        ("-- name: a :one\nSELECT '{}'::jsonb\n", "neither a slot"),
        ("-- name: f :fragment\n{:g}\n-- name: g :fragment\n{:f}\n-- name: a :one\nSELECT {:f}\n", "cycle"),
    ],
)
def test_malformed_sql_files_stop_startup(tmp_path, content, message):
    (tmp_path / "broken.sql").write_text(content)
    with pytest.raises(QueryFileError, match=message):
        load_queries(tmp_path)


def test_fragments_are_included_and_slots_kept(tmp_path):
    (tmp_path / "q.sql").write_text(
        "-- name: open :fragment\nstatus = 'open'\n-- name: outer :fragment\n{:open} AND {after}\n"
        "-- name: a :many\nSELECT * FROM incidents i WHERE {:outer} ORDER BY {order_by}\n"
    )
    query = load_queries(tmp_path).a
    assert query.text == "SELECT * FROM incidents i WHERE status = 'open' AND {after} ORDER BY {order_by}"
    filled = query.format(after="TRUE", order_by="i.id")
    assert filled.text == "SELECT * FROM incidents i WHERE status = 'open' AND TRUE ORDER BY i.id"


def test_duplicate_names_across_files_stop_startup(tmp_path):
    (tmp_path / "a.sql").write_text("-- name: same :one\nSELECT 1\n")
    (tmp_path / "b.sql").write_text("-- name: same :one\nSELECT 2\n")
    with pytest.raises(QueryFileError, match="a.sql"):
        load_queries(tmp_path)


def test_query_kinds(db_conn, tmp_path):
    (tmp_path / "q.sql").write_text(
        "-- name: one :one\nSELECT 1 AS x\n-- name: many :many\nSELECT generate_series(1, 3) AS x\n"
        "-- name: scalar :scalar\nSELECT 42\n-- name: rows :execrows\n"
        "UPDATE users SET active = active WHERE false\n"
    )
    q = load_queries(tmp_path)
    assert q.one(db_conn) == {"x": 1}
    assert q.many(db_conn) == [{"x": 1}, {"x": 2}, {"x": 3}]
    assert q.scalar(db_conn) == 42
    assert q.rows(db_conn) == 0


def test_custom_plan_queries_are_never_prepared(db_conn, tmp_path):
    """A ` :custom_plan` query is planned for its values on every run; the others are prepared
    (psycopg prepares from the fifth run on) and may reuse a generic plan."""
    (tmp_path / "q.sql").write_text(
        "-- name: reused :one\nSELECT %(x)s::int + 1 AS x\n"
        "-- name: replanned :one :custom_plan\nSELECT %(x)s::int + 2 AS x\n"
    )
    q = load_queries(tmp_path)
    for x in range(10):
        assert q.reused(db_conn, x=x) == {"x": x + 1}
        assert q.replanned(db_conn, x=x) == {"x": x + 2}
    prepared = db_conn.execute(
        "SELECT statement FROM pg_prepared_statements WHERE statement LIKE 'SELECT $1::int + %'"
    ).fetchall()
    assert [row["statement"] for row in prepared] == ["SELECT $1::int + 1 AS x"]


def test_the_catch_all_queries_are_custom_plan(queries):
    assert {name for name, query in queries.items() if query.custom_plan} >= {
        "list_category_incidents",
        "search_incidents",
        "incident_stats",
    }


def test_a_list_is_prepared_unless_a_filter_needs_planning_for_its_value(db_conn, queries):
    lists = IncidentLists(queries)
    for args in (
        {"status": ["open"], "severity": ["high"]},
        {"status": ["open", "in_progress"], "source": ["alertmanager"]},
    ):
        page = {**incident_filters(args), "after_value": None, "after_id": None, "limit": 2}
        query, params = lists.query("-created_at", True, page)
        for _ in range(6):
            query(db_conn, **params)
    prepared = [row["statement"] for row in db_conn.execute("SELECT statement FROM pg_prepared_statements")]
    assert [s for s in prepared if "i.severity = ($" in s] != []  # filter_one_severity
    assert [s for s in prepared if "i.source = ANY" in s] == []
