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
from api.sql import load_queries


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


@pytest.fixture(scope="session")
def app_tables(db_conn):
    """The app's tables, as PostgreSQL's catalog lists them."""
    return tables_of(db_conn)


@pytest.fixture(scope="session")
def data_tables(db_conn, app_tables):
    """The tables the tests fill: all but those the migrations seed (the histogram's bounds)."""
    has_rows = sql.SQL("SELECT EXISTS (SELECT FROM {}) AS has_rows")
    return [
        t
        for t in app_tables
        if not db_conn.execute(has_rows.format(sql.Identifier(t))).fetchone()["has_rows"]
    ]


def tables_of(conn):
    return [row["name"] for row in load_queries().read_catalog_tables(conn)]


def empty(conn, tables):
    names = sql.SQL(", ").join(map(sql.Identifier, tables))
    conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(names))


@pytest.fixture(autouse=True)
def empty_tables(request):
    if "database_url" not in request.fixturenames:
        yield
        return
    conn, tables = request.getfixturevalue("db_conn"), request.getfixturevalue("data_tables")
    yield
    empty(conn, tables)
