"""The app on the test database, a client, and factories for users, incidents, categories."""

import contextlib
import itertools

import falcon
import falcon.testing
import pytest

from api.app import create_app
from api.auth import hash_password, new_token
from api.config import Config
from api.db import Database
from api.sql import load_queries
from tests.fix_pgbouncer import through

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def config(database_url, db_conn, session_pgbouncer):
    config = Config(database_url=database_url, pool_min_size=1, pool_max_size=4)
    return config if session_pgbouncer is None else through(session_pgbouncer, config, db_conn)


@contextlib.contextmanager
def client_of(config):
    """A test client of the app on `config`, with the app's pool open for the block. (Falcon's
    test client runs every simulated request on one event loop, where the pool lives.)"""
    db = Database(config)
    falcon.async_to_sync(db.open)
    try:
        yield falcon.testing.TestClient(create_app(db))
    finally:
        falcon.async_to_sync(db.close)


@pytest.fixture(scope="session")
def app(config):
    with client_of(config) as client:
        yield client.app


@pytest.fixture
def client(app):
    return falcon.testing.TestClient(app)


@pytest.fixture(scope="session")
def queries():
    return load_queries()


@pytest.fixture(scope="session")
def password_hash():
    return hash_password(PASSWORD)


def bearer_of_new_user(conn, username, role="admin"):
    """The Authorization header of a new active user without a password, made on `conn` (for
    tests on a database of their own, where the fixtures below do not reach)."""
    queries = load_queries()
    user = queries.create_user(
        conn, username=username, email=f"{username}@example.com", role=role, active=True, password_hash=None
    )
    token, token_hash = new_token()
    queries.create_token(conn, token_hash=token_hash, user_id=user["id"], ttl_days=30)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def make_user(db_conn, queries, password_hash):
    """A user with a token: {'id', 'username', 'email', 'role', 'token', 'headers', ...}."""

    def make(role="reporter", active=True, **fields):
        n = next(_counter)
        user = queries.create_user(
            db_conn,
            username=fields.get("username", f"user{n}"),
            email=fields.get("email", f"user{n}@example.com"),
            role=role,
            active=active,
            password_hash=password_hash,
        )
        token, token_hash = new_token()
        queries.create_token(db_conn, token_hash=token_hash, user_id=user["id"], ttl_days=30)
        return {**user, "token": token, "headers": {"Authorization": f"Bearer {token}"}}

    return make


@pytest.fixture
def admin(make_user):
    return make_user("admin")


@pytest.fixture
def responder(make_user):
    return make_user("responder")


@pytest.fixture
def reporter(make_user):
    return make_user("reporter")


@pytest.fixture
def make_incident(client):
    """An incident reported through the API by `user`."""

    def make(user, **fields):
        body = {"title": f"Incident {next(_counter)}", **fields}
        result = client.simulate_post("/incidents", json=body, headers=user["headers"])
        assert result.status_code == 201, result.json
        return result.json

    return make


@pytest.fixture
def make_category(db_conn, queries):
    def make(name=None):
        return queries.create_category(db_conn, name=name or f"category {next(_counter)}")

    return make
