"""The bench's own database, `incidents_bench`, on the configured server. The bench never
touches a database it did not create: it marks its own with a comment and checks for it."""

import os
import re
import urllib.parse

from psycopg import sql

from api.cli import pgcluster
from api.db import connect

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
