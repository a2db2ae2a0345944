"""python -m bench.comment_bound: what a one-word comment costs against the comment text its
incident's search vector already holds, to choose that bound (migration 28).

In the bench database, inside transactions that are all rolled back: the bound is lifted
(comments_search_bound), an incident gets comments up to SIZE characters in its vector, then
a one-word comment is inserted RUNS times (each rolled back), timed, with the WAL it writes.
Distinct words (as in long log excerpts) are the worst case: the cost follows the distinct
words the vector holds, not its characters; everyday words are the other extreme. Writes
bench/results/comment_bound.md."""

import datetime
import pathlib
import statistics
import time

from api.db import connect
from bench import database

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "comment_bound.md"
SIZES_KIB = (0, 4, 8, 16, 32, 64, 128)
RUNS = 15
EVERYDAY = [
    "database",
    "replica",
    "lag",
    "timeout",
    "pod",
    "evicted",
    "node",
    "drained",
    "restart",
    "kernel",
    "disk",
    "full",
    "network",
]


def filler(n, distinct):
    if distinct:
        return " ".join(f"w{n:03d}x{k:04d}" for k in range(900))[:9000]
    return " ".join(EVERYDAY[(n * 7 + k) % len(EVERYDAY)] for k in range(1500))[:9000]


def one_word_comment(conn, incident, author):
    """(median ms, median WAL bytes) of RUNS one-word comments on the incident, each rolled back."""
    timings, wal = [], []
    for _ in range(RUNS):
        with conn.transaction(force_rollback=True):
            start = conn.execute("SELECT pg_current_wal_insert_lsn() AS lsn").fetchone()["lsn"]
            started = time.perf_counter()
            conn.execute(
                "INSERT INTO comments (incident_id, author_id, content) VALUES (%s, %s, 'ack')",
                [incident, author],
            )
            timings.append((time.perf_counter() - started) * 1000)
            wal.append(
                conn.execute("SELECT pg_current_wal_insert_lsn() - %s::pg_lsn AS bytes", [start]).fetchone()[
                    "bytes"
                ]
            )
    return statistics.median(timings), statistics.median(wal)


def measure(conn, kib, distinct, author):
    with conn.transaction(force_rollback=True):
        conn.execute(
            "CREATE OR REPLACE FUNCTION comments_search_bound() RETURNS integer "
            "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT 100000000'"
        )
        incident = conn.execute(
            "INSERT INTO incidents (title, reporter_id) VALUES ('Bound', %s) RETURNING id", [author]
        ).fetchone()["id"]
        chars = n = 0
        while chars < kib * 1024:
            text = filler(n, distinct)[: kib * 1024 - chars]
            conn.execute(
                "INSERT INTO comments (incident_id, author_id, content) VALUES (%s, %s, %s)",
                [incident, author, text],
            )
            chars, n = chars + len(text), n + 1
        return one_word_comment(conn, incident, author)


def main():
    lines = [
        "# A one-word comment against the comment text in its incident's vector",
        "",
        f"Written by `python -m bench.comment_bound` on {datetime.date.today()}: median of {RUNS} one-word "
        "comments (the INSERT with its trigger, each rolled back) on an incident whose vector holds that much "
        "comment text, with the bound lifted; WAL is what one comment writes.",
        "",
        "| comment text in the vector | distinct words (ms) | WAL | everyday words (ms) | WAL |",
        "|---:|---:|---:|---:|---:|",
    ]
    with connect(database.bench_url()) as conn:
        conn.execute("SET jit = off")  # as on the app's connections (api/db.py)
        author = conn.execute("SELECT min(id) AS id FROM users WHERE active").fetchone()["id"]
        for kib in SIZES_KIB:
            (worst_ms, worst_wal), (easy_ms, easy_wal) = (
                measure(conn, kib, d, author) for d in (True, False)
            )
            lines.append(
                f"| {kib} KiB | {worst_ms:.2f} | {worst_wal / 1024:,.0f} kB | {easy_ms:.2f} | {easy_wal / 1024:,.0f} kB |"
            )
            print(lines[-1], flush=True)
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
