"""python -m bench.session_settings: what the app's session settings cost a request, directly
and through PgBouncer in transaction mode.

A throwaway cluster with one incident, a PgBouncer in front of it, and GET /incidents/{id}'s
query (get_incident) run ROUNDS × PER_ROUND times per way of setting TimeZone, statement_timeout
and jit, the ways interleaved round by round:
- `defaults`: nothing per request; the settings come with the session (startup options directly,
  the role's defaults in the database through the pooler). What the app does.
- `set_local`: BEGIN, set_config(..., true) for the three, the query, COMMIT: what a
  transaction-pooled session would need without role defaults, as separate round trips.
- `set_local_pipelined`: the same four statements in one psycopg pipeline (one round trip).
Prints the median µs per request of each, and the extra over `defaults`."""

import statistics
import time

import psycopg
from psycopg.rows import dict_row

from api.cli import migrate, pgcluster
from api.config import Config
from api.db import connect, connection_kwargs, save_session_defaults, session_settings
from api.sql import load_queries
from tests.fix_pgbouncer import pgbouncer

ROUNDS, PER_ROUND = 7, 1000
SET_LOCAL = "SELECT set_config('timezone', %s, true), set_config('statement_timeout', %s, true), set_config('jit', %s, true)"


def defaults(conn, query, values):
    query(conn, id=1)


def set_local(conn, query, values):
    with conn.transaction():
        conn.execute(SET_LOCAL, values)
        query(conn, id=1)


def set_local_pipelined(conn, query, values):
    with conn.pipeline(), conn.transaction():
        conn.execute(SET_LOCAL, values)
        query(conn, id=1)


WAYS = (defaults, set_local, set_local_pipelined)


def per_request_us(conn, way, query, values):
    started = time.perf_counter()
    for _ in range(PER_ROUND):
        way(conn, query, values)
    return (time.perf_counter() - started) / PER_ROUND * 1e6


def measure(url, config):
    query = load_queries().get_incident
    values = list(session_settings(config).values())
    with psycopg.connect(url, **{**connection_kwargs(config), "row_factory": dict_row}) as conn:
        rounds = {way.__name__: [] for way in WAYS}
        for n in range(ROUNDS):
            for way in WAYS[n % 3 :] + WAYS[: n % 3]:
                rounds[way.__name__].append(per_request_us(conn, way, query, values))
    return {name: statistics.median(times) for name, times in rounds.items()}


def seed(url):
    migrate.apply(url)
    queries = load_queries()
    with connect(url) as conn:
        save_session_defaults(conn, Config(database_url=url))
        user = queries.create_user(
            conn, username="bench", email="b@example.com", role="admin", active=True, password_hash=None
        )
        conn.execute("INSERT INTO incidents (title, reporter_id) VALUES ('bench', %s)", [user["id"]])


def main():
    with pgcluster.throwaway_cluster() as cluster:
        seed(cluster.url())
        with pgbouncer(cluster.url("postgres")) as pooled:
            results = {
                "direct": measure(cluster.url(), Config(database_url=cluster.url())),
                "pgbouncer": measure(
                    pooled(pgcluster.DATABASE_NAME),
                    Config(database_url=pooled(pgcluster.DATABASE_NAME), database_pooler="transaction"),
                ),
            }
    for where, medians in results.items():
        base = medians["defaults"]
        for name, us in medians.items():
            print(f"{where:10} {name:20} {us:7.0f} µs/request  (+{us - base:.0f})")


if __name__ == "__main__":
    main()
