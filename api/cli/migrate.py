"""yoyo migrations applied from Python, under yoyo's lock."""

import urllib.parse

from yoyo import get_backend, read_migrations

from api.cli import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def yoyo_url(database_url):
    """yoyo picks its driver by scheme: postgresql+psycopg:// is psycopg 3."""
    parts = urllib.parse.urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("DATABASE_URL must be a postgresql:// URL")
    return urllib.parse.urlunsplit(parts._replace(scheme="postgresql+psycopg"))


def backend_of(database_url):
    """yoyo's backend, on a session without the statement_timeout that the app's role may have
    as its default (save_session_defaults): building an index may take minutes."""
    backend = get_backend(yoyo_url(database_url))
    backend.connection.execute("SET statement_timeout = 0")
    return backend


def apply(database_url):
    backend = backend_of(database_url)
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        backend.apply_migrations(backend.to_apply(migrations))
    return migrations


def rollback(database_url, count=1):
    """Rolls back the last `count` applied migrations (all of them with count=None)."""
    backend = backend_of(database_url)
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        to_rollback = backend.to_rollback(migrations)
        backend.rollback_migrations(to_rollback[:count] if count else to_rollback)
