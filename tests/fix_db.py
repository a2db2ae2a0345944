"""A real, throwaway PostgreSQL: a private cluster (or TEST_DATABASE_URL's server), one
fresh database migrated once per session, and every table emptied after each test."""

import contextlib
import os
import secrets
import urllib.parse

import pytest
from psycopg import sql

from api.cli import migrate, pgcluster
from api.db import connect

APP_TABLES = [
    "idempotency_keys",
    "login_failures",
    "notifications",
    "follows",
    "incident_history",
    "comments",
    "incident_categories",
    "incidents",
    "categories",
    "api_tokens",
    "users",
]


def with_database(url, name):
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/" + name))


@pytest.fixture(scope="session")
def server_url():
    """A URL to a PostgreSQL server where the tests may create and drop databases."""
    with contextlib.ExitStack() as stack:
        url = os.environ.get("TEST_DATABASE_URL")
        if not url:
            url = stack.enter_context(pgcluster.throwaway_cluster()).url("postgres")
        yield url


@contextlib.contextmanager
def scratch_database(server_url):
    name = f"incidents_test_{secrets.token_hex(6)}"
    with connect(server_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(server_url, name)
    finally:
        with connect(server_url) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def database_url(server_url):
    with scratch_database(server_url) as url:
        migrate.apply(url)
        yield url


@pytest.fixture(scope="session")
def db_conn(database_url):
    """A direct connection for arranging data and checking what the API wrote."""
    with connect(database_url) as conn:
        yield conn


@pytest.fixture(autouse=True)
def empty_tables(request):
    uses_database = "database_url" in request.fixturenames
    conn = request.getfixturevalue("db_conn") if uses_database else None
    yield
    if conn:
        conn.execute(f"TRUNCATE {', '.join(APP_TABLES)} RESTART IDENTITY CASCADE")
