"""make bench, step 1: seed the bench database (python -m bench.seed).

SCALE=1 (the default) is 1,000,000 incidents, 10,000 users, 50 categories and 2,000,000
comments; SCALE=0.01 a hundredth of that. Seeding is skipped when the database already holds
that scale; RESEED=1 seeds again."""

import os
import pathlib
import time

from api.cli import migrate
from api.db import connect
from api.sql import load_queries
from bench import database, indexes

STEPS = [
    "seed_users",
    "seed_categories",
    "seed_comment_drafts",
    "seed_incidents",
    "seed_comments",
    "seed_incident_categories",
    "seed_history",
    "seed_notifications",
    "seed_follows",
]
TABLES = {
    "seed_users": "users",
    "seed_categories": "categories",
    "seed_comment_drafts": "comment_drafts",
    "seed_incidents": "incidents",
    "seed_comments": "comments",
    "seed_incident_categories": "incident_categories",
    "seed_history": "incident_history",
    "seed_notifications": "notifications",
    "seed_follows": "follows",
}

# The seed writes what these tables' triggers would check or derive, valid by construction:
# assignees are active, search vectors include comments and count their characters (every seeded
# thread is far below the 16 KiB past which comments overflow), links carry their incident's columns
# (created_at, and those the stats filter on and measure).
SEEDED_PAST_TRIGGERS = ("incidents", "comments", "incident_categories")


def sizes(scale):
    return {
        "users": max(20, round(10_000 * scale)),
        "categories": 50,
        "incidents": max(10, round(1_000_000 * scale)),
        "comments": max(10, round(2_000_000 * scale)),
        "follows": max(10, round(30_000 * scale)),
    }


def seed(url, scale):
    """Seeds a freshly created bench database; returns [(step, rows, seconds)]."""
    migrate.apply(url)
    queries = load_queries(pathlib.Path(__file__).parent)
    report = []
    with connect(url) as conn:
        indexes.drop(conn)
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET work_mem = '256MB'")
        with conn.transaction():
            conn.execute("SELECT setseed(0.42)")
            for table in SEEDED_PAST_TRIGGERS:
                conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            for step in STEPS:
                started = time.perf_counter()
                queries[step](conn, **sizes(scale))
                rows = conn.execute(f"SELECT count(*) AS n FROM {TABLES[step]}").fetchone()["n"]
                report.append((step, rows, time.perf_counter() - started))
            started = time.perf_counter()
            conn.execute("SELECT incident_duration_buckets_refill()")  # the triggers were off
            conn.execute("SELECT incident_stats_refill()")
            conn.execute("SELECT incident_stats_category_refill()")
            report.append(("duration histogram", 0, time.perf_counter() - started))
            for table in SEEDED_PAST_TRIGGERS:
                conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        report.append(("vacuum analyze", 0, time.perf_counter() - started))
    return report


def main():
    scale = float(os.environ.get("SCALE", "1"))
    if database.seeded_scale() == scale and not os.environ.get("RESEED"):
        migrate.apply(database.bench_url())  # seeded by an earlier release: its later migrations
        print(f"{database.NAME} is already seeded at scale {scale} (RESEED=1 to seed again)")
        return
    database.recreate()
    url = database.bench_url()
    total = time.perf_counter()
    for step, rows, seconds in seed(url, scale):
        rate = f"{rows / seconds:,.0f} rows/s" if rows else ""
        print(f"{step:26} {rows:>11,} rows {seconds:7.1f} s  {rate}")
    database.mark_seeded(scale)
    print(f"seeded {database.NAME} at scale {scale} in {time.perf_counter() - total:.0f} s")


if __name__ == "__main__":
    main()
