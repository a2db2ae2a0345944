"""Command line: `python -m api migrate|rollback|create-admin|db-start|db-stop|db-url`."""
import argparse
import sys

import psycopg

from api import migrate, pgcluster
from api.auth import new_token
from api.config import Config
from api.db import connect
from api.sql import load_queries


def cmd_migrate(args, config):
    migrate.apply(config.database_url)
    print("migrations applied")


def cmd_rollback(args, config):
    migrate.rollback(config.database_url, None if args.all else 1)
    print("rolled back", "all migrations" if args.all else "the last migration")


def cmd_create_admin(args, config):
    queries = load_queries()
    with connect(config.database_url) as conn, conn.transaction():
        if args.if_empty and queries.count_users(conn):
            return
        try:
            user = queries.create_user(conn, username=args.username, email=args.email,
                                       role="admin", active=True, password_hash=None)
        except psycopg.errors.UniqueViolation:
            sys.exit(f"A user named {args.username!r} or with email {args.email!r} already exists.")
        except psycopg.errors.CheckViolation:
            sys.exit("The username needs 3-50 of A-Z a-z 0-9 _ . - and the email an @.")
        token, token_hash = new_token()
        queries.create_token(conn, token_hash=token_hash, user_id=user["id"])
    print(f"Created admin {user['username']!r} (id {user['id']}). Its token, shown only once:\n"
          f"\n    {token}\n\nUse it as 'Authorization: Bearer <token>'. The admin has no "
          f"password until one is set with PATCH /users/{user['id']}.")


def cmd_db_start(args, config):
    pgcluster.private_cluster().start()
    print(f"PostgreSQL is up: {pgcluster.private_cluster().url()}")


def cmd_db_stop(args, config):
    pgcluster.private_cluster().stop()
    print("PostgreSQL stopped")


def cmd_db_url(args, config):
    print(config.database_url)


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
        run=cmd_db_start)
    commands.add_parser("db-stop", help="stop the private cluster").set_defaults(run=cmd_db_stop)
    commands.add_parser("db-url", help="print the database URL in use").set_defaults(run=cmd_db_url)
    return root


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        args.run(args, Config.from_env())
    except pgcluster.ClusterError as ex:
        sys.exit(str(ex))
    except psycopg.OperationalError as ex:
        sys.exit(f"Cannot reach the database: {ex}")


if __name__ == "__main__":
    main()
