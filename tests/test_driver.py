"""api/driver.py, the app's way of running a statement, on a real PostgreSQL: what it prepares,
how it passes values and answers errors, and what it leaves on the connection."""

import asyncio

import psycopg
import pytest

from api import driver
from api.db import connect


def on_new_connection(database_url, work, **kwargs):
    """Runs `work(conn)` on a new AsyncConnection set up as the app's pool sets up its own."""

    async def main():
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True, **kwargs) as conn:
            return await work(conn)

    return asyncio.run(main())


async def prepared_statements(conn):
    rows, _ = await driver.run(conn, "SELECT statement FROM pg_prepared_statements ORDER BY name", {})
    return [row["statement"] for row in rows]


def test_a_statement_is_prepared_on_its_first_run_unless_it_wants_a_custom_plan(database_url):
    async def work(conn):
        assert await driver.run(conn, "SELECT %(x)s::int + 1 AS x", {"x": 1}) == ([{"x": 2}], 1)
        await driver.run(conn, "SELECT %(x)s::int + 2 AS x", {"x": 1}, prepare=False)
        return await prepared_statements(conn)

    assert on_new_connection(database_url, work) == [
        "SELECT $1::int + 1 AS x",
        "SELECT statement FROM pg_prepared_statements ORDER BY name",
    ]


def test_nothing_is_prepared_where_psycopg_is_told_not_to(database_url):
    async def work(conn):
        await driver.run(conn, "SELECT %(x)s::int + 1 AS x", {"x": 1})
        return await prepared_statements(conn)

    assert on_new_connection(database_url, work, prepare_threshold=None) == []


def test_beyond_the_prepared_statements_cap_statements_run_unprepared(database_url, monkeypatch):
    monkeypatch.setattr(driver, "PREPARED_MAX", 2)

    async def work(conn):
        answers = [await driver.run(conn, f"SELECT %(x)s::int + {n} AS x", {"x": 1}) for n in range(4)]
        return answers, await prepared_statements(conn)

    answers, prepared = on_new_connection(database_url, work)
    assert [rows for rows, _ in answers] == [[{"x": 1 + n}] for n in range(4)]
    assert prepared == ["SELECT $1::int + 0 AS x", "SELECT $1::int + 1 AS x"]


def test_values_of_every_kind_and_size_pass_as_psycopg_passes_them(database_url):
    text = (
        "SELECT %(n)s::bigint AS n, %(s)s::text AS s, %(a)s::text[] AS a, %(n)s + 0 AS again, '100%%' AS pct"
    )

    async def work(conn):
        return [
            (await driver.run(conn, text, {"n": n, "s": s, "a": a}))[0][0]
            for n, s, a in [
                (1, "x", ["a"]),
                (2**40, "it's", []),
                (None, None, None),
                (-(2**63), "é", ["b", None]),
            ]
        ]

    assert on_new_connection(database_url, work) == [
        {"n": 1, "s": "x", "a": ["a"], "again": 1, "pct": "100%"},
        {"n": 2**40, "s": "it's", "a": [], "again": 2**40, "pct": "100%"},
        {"n": None, "s": None, "a": None, "again": None, "pct": "100%"},
        {"n": -(2**63), "s": "é", "a": ["b", None], "again": -(2**63), "pct": "100%"},
    ]


def test_a_statement_answers_the_number_of_rows_it_touched(database_url):
    async def work(conn):
        await driver.run(conn, "CREATE TEMP TABLE t (n int PRIMARY KEY)", {})
        inserted = await driver.run(conn, "INSERT INTO t SELECT generate_series(1, %(n)s)", {"n": 3})
        deleted = await driver.run(conn, "DELETE FROM t WHERE n > %(n)s", {"n": 1})
        return inserted, deleted

    assert on_new_connection(database_url, work) == (([], 3), ([], 2))


def test_an_error_is_psycopgs_exception_and_the_connection_goes_on(database_url):
    async def work(conn):
        await driver.run(conn, "CREATE TEMP TABLE t (n int CONSTRAINT t_n PRIMARY KEY)", {})
        insert = "INSERT INTO t VALUES (%(n)s)"
        await driver.run(conn, insert, {"n": 1})
        with pytest.raises(psycopg.errors.UniqueViolation) as raised:
            await driver.run(conn, insert, {"n": 1})
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):  # in preparing, not running
            await driver.run(conn, "SELECT 'x'::int + %(n)s AS n", {"n": 1})
        return raised.value.diag.constraint_name, await driver.run(conn, "SELECT count(*) AS n FROM t", {})

    assert on_new_connection(database_url, work) == ("t_n", ([{"n": 1}], 1))


def test_statements_inside_a_transaction_commit_or_roll_back_with_it(database_url):
    async def work(conn):
        await driver.run(conn, "CREATE TEMP TABLE t (n int)", {})
        async with conn.transaction():
            await driver.run(conn, "INSERT INTO t VALUES (1)", {})
        with pytest.raises(ZeroDivisionError):
            async with conn.transaction():
                await driver.run(conn, "INSERT INTO t VALUES (2)", {})
                raise ZeroDivisionError
        return await driver.run(conn, "SELECT array_agg(n) AS ns FROM t", {})

    assert on_new_connection(database_url, work)[0] == [{"ns": [1]}]


def test_tasks_sharing_a_connection_take_turns(database_url):
    """As the webhook deliveries of one worker do."""

    async def work(conn):
        statements = (driver.run(conn, "SELECT %(n)s::int AS n, pg_sleep(0.01)", {"n": n}) for n in range(20))
        return [rows[0]["n"] for rows, _ in await asyncio.gather(*statements)]

    assert on_new_connection(database_url, work) == list(range(20))


def test_a_cancelled_statement_is_cancelled_in_the_server_too(database_url):
    async def work(conn):
        sleeping = asyncio.create_task(driver.run(conn, "SELECT pg_sleep(30)", {}))
        await asyncio.sleep(0.3)
        sleeping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeping
        return conn.info.transaction_status, await driver.run(conn, "SELECT 1 AS one", {})

    status, answer = on_new_connection(database_url, work)
    assert (status, answer) == (psycopg.pq.TransactionStatus.IDLE, ([{"one": 1}], 1))


def test_a_connection_the_server_closed_is_broken(database_url):
    async def work(conn):
        with connect(database_url) as other:
            other.execute("SELECT pg_terminate_backend(%s)", [conn.info.backend_pid])
        with pytest.raises(psycopg.OperationalError):
            await driver.run(conn, "SELECT 1 AS one", {})
        return conn.broken

    assert on_new_connection(database_url, work) is True


def test_only_connections_in_autocommit(database_url):
    async def work(conn):
        with pytest.raises(ValueError, match="autocommit"):
            await driver.run(conn, "SELECT 1 AS one", {})
        return conn.info.transaction_status

    async def main():
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await work(conn)

    assert asyncio.run(main()) == psycopg.pq.TransactionStatus.IDLE
