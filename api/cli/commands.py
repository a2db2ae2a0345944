"""Command line: `python -m api migrate|rollback|create-admin|db-start|db-stop|db-url|backup|restore|report|diagram|insomnia|deliver|cluster`."""

import argparse
import dataclasses
import os
import pathlib
import sys

import psycopg

from api import delivery
from api.auth import new_token
from api.cli import backup, cluster, diagram, insomnia, migrate, pgcluster
from api.config import Config, ConfigError
from api.db import connect, save_session_defaults
from api.sql import load_queries


def cmd_migrate(args, config):
    migrate_with_defaults(config)
    print("migrations applied")


def migrate_with_defaults(config):
    migrate.apply(config.database_url)
    with connect(config.database_url) as conn:
        save_session_defaults(conn, config)


def cmd_rollback(args, config):
    migrate.rollback(config.database_url, None if args.all else 1)
    print("rolled back", "all migrations" if args.all else "the last migration")


def cmd_create_admin(args, config):
    queries = load_queries()
    with connect(config.database_url) as conn, conn.transaction():
        if args.if_empty and queries.count_users(conn):
            return
        try:
            user = queries.create_user(
                conn, username=args.username, email=args.email, role="admin", active=True, password_hash=None
            )
        except psycopg.errors.UniqueViolation:
            sys.exit(f"A user named {args.username!r} or with email {args.email!r} already exists.")
        except psycopg.errors.CheckViolation:
            sys.exit("The username needs 3-50 of A-Z a-z 0-9 _ . - and the email an @.")
        token, token_hash = new_token()
        queries.create_token(conn, token_hash=token_hash, user_id=user["id"], ttl_days=config.token_ttl_days)
    print(
        f"Created admin {user['username']!r} (id {user['id']}). Its token, shown only once "
        f"(it expires in {config.token_ttl_days} days):\n"
        f"\n    {token}\n\nUse it as 'Authorization: Bearer <token>'. The admin has no "
        f"password until one is set with PATCH /users/{user['id']}."
    )


def cmd_db_start(args, config):
    pgcluster.private_cluster().start(*pgcluster.sized_to_machine())
    print(f"PostgreSQL is up: {pgcluster.private_cluster().url()}")


def cmd_db_stop(args, config):
    pgcluster.private_cluster().stop()
    print("PostgreSQL stopped")


def cmd_db_url(args, config):
    print(config.database_url)


def cmd_backup(args, config):
    print(f"wrote {backup.backup(config.database_url, args.dir)}")


def cmd_restore(args, config):
    backup.restore(config.database_url, args.file)
    migrate_with_defaults(config)
    print(f"restored {args.file} and applied the migrations it lacked")


def cmd_report(args, config):
    # NOTE: imported here so that other commands do not pay for loading pandas and matplotlib.
    from api.cli.report import write_report

    with connect(config.database_url) as conn:
        paths = write_report(conn, args.out, days=args.days)
    print(f"wrote {len(paths)} files; open {paths[-1]}")


def cmd_diagram(args, config):
    with connect(config.database_url) as conn:
        schema = diagram.read_schema(conn)
    try:
        diagram.write_png(diagram.dot(schema), args.png)
        diagram.update_page(diagram.mermaid(schema), args.page)
    except RuntimeError as ex:
        sys.exit(str(ex))
    print(f"wrote {args.png} and the erDiagram in {args.page}")


def cmd_insomnia(args, config):
    try:
        path = insomnia.write(config, args.out)
    except insomnia.ExamplesMismatch as ex:
        sys.exit(str(ex))
    print(f"wrote {path}")


def cmd_deliver(args, config):
    delivery.main(config, load_queries())


def cmd_cluster(args, config):
    layout = cluster.Layout.from_env()
    if args.action == "start":
        cluster.start(layout, lambda url: _bootstrap(dataclasses.replace(config, database_url=url)))
    else:
        getattr(cluster, args.action)(layout)


def _bootstrap(config):
    """What `make run` does to its database: migrate, and create the first admin if there is none."""
    migrate_with_defaults(config)
    admin = argparse.Namespace(
        username=os.environ.get("ADMIN_USERNAME", "admin"),
        email=os.environ.get("ADMIN_EMAIL", "admin@example.com"),
        if_empty=True,
    )
    cmd_create_admin(admin, config)


def parser():
    root = argparse.ArgumentParser(prog="python -m api")
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply all pending migrations").set_defaults(run=cmd_migrate)
    rollback = commands.add_parser("rollback", help="roll back the last migration")
    rollback.add_argument("--all", action="store_true", help="roll back every migration")
    rollback.set_defaults(run=cmd_rollback)
    admin = commands.add_parser("create-admin", help="create an admin and print its token")
    admin.add_argument("--username", required=True)
    admin.add_argument("--email", required=True)
    admin.add_argument("--if-empty", action="store_true", help="only if there are no users yet")
    admin.set_defaults(run=cmd_create_admin)
    commands.add_parser("db-start", help="start the private cluster in .pgdata/").set_defaults(
        run=cmd_db_start
    )
    commands.add_parser("db-stop", help="stop the private cluster").set_defaults(run=cmd_db_stop)
    commands.add_parser("db-url", help="print the database URL in use").set_defaults(run=cmd_db_url)
    dump = commands.add_parser("backup", help="pg_dump the database to DIR/<database>-<UTC time>.dump")
    dump.add_argument(
        "--dir",
        default=os.environ.get("BACKUP_DIR", "backups"),
        help="folder (default: BACKUP_DIR or backups)",
    )
    dump.set_defaults(run=cmd_backup)
    load = commands.add_parser("restore", help="restore a backup into the (empty) database and migrate it")
    load.add_argument("file", help="a .dump written by backup")
    load.set_defaults(run=cmd_restore)
    report = commands.add_parser("report", help="render charts and index.html from the database")
    report.add_argument("--out", default="report", help="folder to write to (default: report)")
    report.add_argument("--days", type=int, default=30, help="days of the opened/resolved chart")
    report.set_defaults(run=cmd_report)
    erd = commands.add_parser(
        "diagram", help="draw the schema: docs/diagram.png and docs/architecture.md's erDiagram"
    )
    erd.add_argument("--png", default=diagram.PNG, help="where to write the PNG")
    erd.add_argument("--page", default=diagram.PAGE, help="the Markdown page with the erd markers")
    erd.set_defaults(run=cmd_diagram)
    commands.add_parser("deliver", help="run the webhook delivery worker").set_defaults(run=cmd_deliver)
    topology = commands.add_parser(
        "cluster", help="two gunicorns, PgBouncer, a primary and its replica, in the background"
    )
    topology.add_argument("action", choices=["start", "stop", "status"])
    topology.set_defaults(run=cmd_cluster)
    collection = commands.add_parser("insomnia", help="write docs/insomnia.json, an Insomnia collection")
    collection.add_argument("--out", type=pathlib.Path, default=insomnia.OUTPUT, help="where to write it")
    collection.set_defaults(run=cmd_insomnia)
    return root


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        args.run(args, Config.from_env({**os.environ, "DATABASE_URL": pgcluster.database_url()}))
    except (pgcluster.ClusterError, ConfigError, backup.BackupError) as ex:
        sys.exit(str(ex))
    except psycopg.OperationalError as ex:
        if "unsupported startup parameter" in str(ex):
            sys.exit(f"{ex}\nThe command line needs DATABASE_URL to name PostgreSQL itself, not a pooler.")
        sys.exit(f"Cannot reach the database: {ex}")


if __name__ == "__main__":
    main()
