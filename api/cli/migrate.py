"""yoyo migrations applied from Python, under yoyo's lock."""

import urllib.parse

from yoyo import get_backend, read_migrations

from api.cli import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def yoyo_url(database_url):
    """yoyo picks its driver by scheme: postgresql+psycopg:// is psycopg 3. Its session has no
    statement_timeout, whatever the app's role has as its default (save_session_defaults):
    building an index may take minutes. (A startup option: through a pooler, which refuses
    those, the migrations fail at once instead of leaving a SET behind on a shared session.)"""
    parts = urllib.parse.urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("DATABASE_URL must be a postgresql:// URL")
    query = urllib.parse.urlencode(
        [*urllib.parse.parse_qsl(parts.query), ("options", "-c statement_timeout=0")]
    )
    return urllib.parse.urlunsplit(parts._replace(scheme="postgresql+psycopg", query=query))


def apply(database_url):
    backend = get_backend(yoyo_url(database_url))
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        backend.apply_migrations(backend.to_apply(migrations))
    return migrations


def rollback(database_url, count=1):
    """Rolls back the last `count` applied migrations (all of them with count=None)."""
    backend = get_backend(yoyo_url(database_url))
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        to_rollback = backend.to_rollback(migrations)
        backend.rollback_migrations(to_rollback[:count] if count else to_rollback)
