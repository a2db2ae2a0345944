"""python -m bench.comment_search: search and comments before and after the search overflow
(migration 28: an incident's vector bounded, a long thread's later comments in documents of
their own), on make bench's million incidents.

The database before is a copy of the bench database (`incidents_bench_before`, made from it as a
template, with a marker) with migration 28 rolled back, searched with the query of the commit
before (BEFORE, read with git show). In interleaved rounds, each search case of bench.explain
runs on both (EXPLAIN ANALYZE execution time), then a batch of comments on both (POST
/incidents/{id}/comments' statement on the newest incidents, timed and rolled back); the copy is
kept for the next run (DROP_BEFORE=1 drops it at the end). ROUNDS to taste. Writes
bench/results/comment_search.md."""

import datetime
import os
import pathlib
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.parse

from psycopg import sql
from yoyo import get_backend, read_migrations

from api.cli import migrate
from api.db import connect
from api.sql import SQL_DIR, load_queries
from bench import database, explain

BEFORE = "97ef1bd"
MIGRATION = "20261202_28_search_overflow"
COPY = database.NAME + "_before"
MARKER = "copied by bench.comment_search"
RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "comment_search.md"
ROUNDS = int(os.environ.get("ROUNDS", "5"))
COMMENTS_PER_ROUND = 200


def copy_url():
    parts = urllib.parse.urlsplit(database.bench_url())
    return urllib.parse.urlunsplit(parts._replace(path="/" + COPY))


def make_copy():
    """The bench database as it was before migration 28: copied, then that migration rolled back."""
    with connect(database.server_url()) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = %s",
            [COPY],
        ).fetchone()
        if row is not None:
            if row["comment"] != MARKER:
                raise SystemExit(f"Refusing to touch database {COPY!r}: this bench did not create it.")
            return
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(COPY), sql.Identifier(database.NAME)
            )
        )
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(COPY), sql.Literal(MARKER))
        )
    started = time.perf_counter()
    backend = get_backend(migrate.yoyo_url(copy_url()))
    migrations = read_migrations(str(migrate.MIGRATIONS_DIR))
    with backend.lock():
        backend.rollback_migrations(migrations.filter(lambda m: m.id == MIGRATION))
    print(f"rolled {MIGRATION} back in {COPY} in {time.perf_counter() - started:.0f} s")


def queries_before():
    """The queries of this tree with search.sql as it was at BEFORE."""
    with tempfile.TemporaryDirectory() as directory:
        for path in SQL_DIR.glob("*.sql"):
            shutil.copy(path, directory)
        old = subprocess.run(
            ["git", "show", f"{BEFORE}:sql/search.sql"], capture_output=True, text=True, check=True
        ).stdout
        pathlib.Path(directory, "search.sql").write_text(old)
        return load_queries(directory)


def comment_ms(conn, queries, incident_ids, author_id):
    """Median ms of the comment statement on each incident, each rolled back."""
    timings = []
    for incident_id in incident_ids:
        with conn.transaction(force_rollback=True):
            started = time.perf_counter()
            queries.create_comment(conn, incident_id=incident_id, author_id=author_id, content="ack")
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def search_cases(queries, conn):
    ids = explain.probes(conn)
    return [case for case in explain.cases(queries, ids, {}) if case[1] == "search_incidents"]


def statement_ms(conn, text, params):
    """Ms of the whole statement, planning and transfer included (EXPLAIN ANALYZE leaves out planning)."""
    started = time.perf_counter()
    conn.execute(text, params).fetchall()
    return (time.perf_counter() - started) * 1000


def run():
    make_copy()
    designs = {"before": (copy_url(), queries_before()), "after": (database.bench_url(), load_queries())}
    conns = {name: connect(url) for name, (url, _) in designs.items()}
    try:
        for conn in conns.values():
            conn.execute("SET jit = off")  # as on the app's connections (api/db.py)
        cases = {name: search_cases(designs[name][1], conn) for name, conn in conns.items()}
        newest = conns["after"].execute("SELECT max(id) AS id FROM incidents").fetchone()["id"]
        author = conns["after"].execute("SELECT min(id) AS id FROM users WHERE active").fetchone()["id"]
        searches = {name: [[] for _ in cases[name]] for name in conns}
        comments = {name: [] for name in conns}
        # Both queries on this tree's database, so that only the query differs.
        same = {"before": search_cases(designs["before"][1], conns["after"]), "after": cases["after"]}
        statements = {name: [[] for _ in same[name]] for name in same}
        for round_ in range(ROUNDS):
            order = list(conns) if round_ % 2 == 0 else list(reversed(conns))
            targets = random.Random(round_).sample(range(newest - 10_000, newest + 1), COMMENTS_PER_ROUND)
            for name in order:
                for n, (_, _, text, params) in enumerate(cases[name]):
                    searches[name][n].append(explain.measure(conns[name], text, params, runs=1)[0])
                comments[name].append(comment_ms(conns[name], designs[name][1], targets, author))
                for n, (_, _, text, params) in enumerate(same[name]):
                    statements[name][n].append(statement_ms(conns["after"], text, params))
            print(
                f"round {round_ + 1}/{ROUNDS}: comments {comments['before'][-1]:.2f} → {comments['after'][-1]:.2f} ms"
            )
        counts = (
            conns["after"]
            .execute(
                "SELECT (SELECT count(*) FROM incidents) AS incidents, (SELECT count(*) FROM comments) AS comments"
            )
            .fetchone()
        )
    finally:
        for conn in conns.values():
            conn.close()
    if os.environ.get("DROP_BEFORE"):
        with connect(database.server_url()) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(COPY)))
    titles = [case[0] for case in cases["after"]]
    return titles, searches, comments, counts, statements


def ratios(before, after):
    """The median of the per-round ratios after/before, and their range."""
    per_round = sorted(a / b for a, b in zip(after, before, strict=True))
    return statistics.median(per_round), per_round[0], per_round[-1]


def table_rows(rows):
    lines = []
    for title, before, after in rows:
        ratio, low, high = ratios(before, after)
        lines.append(
            f"| {title} | {statistics.median(before):.2f} | {statistics.median(after):.2f} | "
            f"{ratio:.2f} ({low:.2f}–{high:.2f}) |"
        )
    return lines


def report(titles, searches, comments, counts, statements):
    lines = [
        "# Search and comments before and after the search overflow",
        "",
        f"Written by `python -m bench.comment_search` on {datetime.date.today()} against "
        f"{counts['incidents']:,} incidents and {counts['comments']:,} comments: *before* is the bench "
        f"database with migration 28 rolled back, searched with the query of {BEFORE}; *after* is this tree. "
        f"{ROUNDS} interleaved rounds (the order alternating); a search's figure is the median of its "
        "execution times (EXPLAIN ANALYZE, one per round), a comment's the median over the rounds of "
        f"each round's median of {COMMENTS_PER_ROUND} comment statements on random incidents among the "
        "10,000 newest (each rolled back). The ratio is the median of the per-round ratios after / before "
        "(below 1 is faster), with their range.",
        "",
        "| request | before (ms) | after (ms) | after / before (range) |",
        "|---|---:|---:|---:|",
    ]
    rows = [(title, searches["before"][n], searches["after"][n]) for n, title in enumerate(titles)]
    rows.append(("`POST /incidents/{id}/comments` (the statement)", comments["before"], comments["after"]))
    lines += table_rows(rows)
    lines += [
        "",
        "Whole search statements (planning, which EXPLAIN ANALYZE leaves out, and transfer included), the "
        "query before and this tree's both on this tree's database, in the same rounds:",
        "",
        "| request | before (ms) | after (ms) | after / before (range) |",
        "|---|---:|---:|---:|",
    ]
    lines += table_rows(
        [(title, statements["before"][n], statements["after"][n]) for n, title in enumerate(titles)]
    )
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    report(*run())


if __name__ == "__main__":
    main()
