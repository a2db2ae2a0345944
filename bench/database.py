"""The bench's own database, `incidents_bench`, on the configured server. The bench never
touches a database it did not create: it marks its own with a comment and checks for it."""

import os
import re
import urllib.parse

from psycopg import sql

from api.auth import new_token
from api.cli import pgcluster
from api.db import connect
from api.sql import load_queries

NAME = os.environ.get("BENCH_DATABASE", "incidents_bench")
MARKER = "created by make bench"


def server_url():
    return pgcluster.database_url()


def bench_url(url=None):
    parts = urllib.parse.urlsplit(url or server_url())
    return urllib.parse.urlunsplit(parts._replace(path="/" + NAME))


def seeded_scale(url=None):
    """The scale the bench database was seeded at, None if it has not been (fully) seeded;
    exits if a database of that name exists that the bench did not create."""
    with connect(url or server_url()) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = %s",
            [NAME],
        ).fetchone()
    if row is None:
        return None
    if not (row["comment"] or "").startswith(MARKER):
        raise SystemExit(
            f"Refusing to touch database {NAME!r}: make bench did not create it. "
            "Set BENCH_DATABASE to another name."
        )
    match = re.search(r"scale=([0-9.]+)", row["comment"])
    return float(match[1]) if match else None


def recreate(url=None):
    with connect(url or server_url()) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(NAME)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(NAME)))
        mark(conn, MARKER)


def mark_seeded(scale, url=None):
    with connect(url or server_url()) as conn:
        mark(conn, f"{MARKER}, seeded at scale={scale}")


def mark(conn, comment):
    conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(NAME), sql.Literal(comment)))


def user_with_token(conn, role, username="bench"):
    """A new active user of `role` (no password: wrk never logs in) and a day-long token for it:
    (the user's row, the token)."""
    queries = load_queries()
    user = queries.create_user(
        conn, username=username, email=f"{username}@example.com", role=role, active=True, password_hash=None
    )
    token, token_hash = new_token()
    queries.create_token(conn, token_hash=token_hash, user_id=user["id"], ttl_days=1)
    return user, token


def seed_incidents(conn, reporter_id, count):
    """`count` plain incidents (titles 'seed 1', 'seed 2', …) reported by `reporter_id`."""
    conn.execute(
        "INSERT INTO incidents (title, reporter_id) SELECT 'seed ' || n, %s FROM generate_series(1, %s) n",
        [reporter_id, count],
    )
