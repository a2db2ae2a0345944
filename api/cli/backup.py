"""`python -m api backup` and `restore`: pg_dump's custom format, restored only into an empty
database."""

import datetime
import os
import pathlib
import subprocess
import urllib.parse

from api.cli import pgcluster
from api.db import connect
from api.sql import load_queries

TOOLS_HINT = (
    "pg_dump and pg_restore were not found via PG_BINDIR, `pg_config --bindir`, PATH or "
    "/usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: sudo apt-get install postgresql-client), "
    "in a version at least the server's."
)


class BackupError(RuntimeError):
    pass


def backup(database_url, directory):
    """Dumps the database (one consistent snapshot) to <directory>/<database>-<UTC time>.dump."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{_database_name(database_url)}-{stamp}.dump"
    partial = path.with_suffix(".dump.partial")
    if path.exists():
        raise BackupError(f"{path} exists already; try again in a second")
    _run("pg_dump", "--format=custom", f"--file={partial}", f"--dbname={database_url}")
    os.replace(partial, path)  # NOTE: so that a failed dump never looks like a backup
    return path


def restore(database_url, path):
    """Restores `path` into the database, which must be empty, in one transaction."""
    if not pathlib.Path(path).is_file():
        raise BackupError(f"{path}: no such file")
    with connect(database_url) as conn:
        objects = load_queries().count_user_objects(conn)
    if objects:
        raise BackupError(
            f"The database {_database_name(database_url)!r} is not empty ({objects} tables, sequences, "
            "functions and the like): restore only into an empty database, e.g. one made with "
            "`createdb`, named by DATABASE_URL."
        )
    _run(
        "pg_restore", "--exit-on-error", "--single-transaction", "--no-owner", "--no-privileges",
        f"--dbname={database_url}", str(path),
    )  # fmt: skip


def _database_name(database_url):
    return urllib.parse.urlsplit(database_url).path.lstrip("/") or "postgres"


def _run(tool, *args):
    bindir = pgcluster.find_bindir(("pg_dump", "pg_restore"), TOOLS_HINT)
    result = subprocess.run([os.path.join(bindir, tool), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{tool} failed:\n{result.stderr.strip()}")
