"""python -m bench.feed_cost: what the change feed costs the writes that publish to it.

gunicorn servers side by side, each on a fresh database of the configured server: the tree of
the commit before the feed (BASE), this tree, and the tree of the first design, whose positions
came from a counter row locked until commit (COUNTER), the older trees exported with git
archive. wrk drives `POST /incidents` and `POST /incidents/{id}/comments` against each in
interleaved rounds (the order rotates per round), so load from anything else on the machine
weighs on all; each ratio to the server without the feed is taken per round, and its median
reported. Writes bench/results/feed_cost.md. The databases (feed_cost_*) are created with a
marker and dropped at the end; a database of such a name without the marker is never touched."""

import contextlib
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from psycopg import sql

from api.auth import hash_password, new_token
from api.cli import pgcluster
from api.db import connect
from api.sql import load_queries
from bench.load import free_port, run_wrk, wait_until_up

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "feed_cost.md"
BASE = os.environ.get("FEED_COST_BASE", "ebddcab")  # the last commit before the change feed
COUNTER = os.environ.get("FEED_COST_COUNTER", "6b4bf85")  # the feed with a serialising counter row
ROUNDS = int(os.environ.get("ROUNDS", 5))
SECONDS = int(os.environ.get("SECONDS_PER_RUN", 10))
WORKERS = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count()))
INCIDENTS = 1000  # comment targets
MARKER = "created by bench.feed_cost"
WITHOUT = "without feed"
CONFIGS = {  # name: (git commit, or None for this tree; database)
    WITHOUT: (BASE, "feed_cost_without"),
    "feed: transaction-id positions (this tree)": (None, "feed_cost_xid"),
    "feed: counter row locked to commit": (COUNTER, "feed_cost_counter"),
}
POST = 'wrk.headers["Content-Type"] = "application/json"\n'
SCENARIOS = {
    "POST /incidents": POST + 'return wrk.format("POST", "/incidents", nil, '
    '\'{"title": "Feed cost incident", "description": "made by bench.feed_cost", "severity": "high"}\')',
    "POST /incidents/{id}/comments": POST
    + f'return wrk.format("POST", "/incidents/" .. math.random(1, {INCIDENTS}) .. '
    '"/comments", nil, \'{"content": "feed cost comment"}\')',
}


def database_url(server_url, name):
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(server_url)._replace(path="/" + name))


def recreate(server_url, name, marker=MARKER):
    with connect(server_url) as conn:
        comment = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if comment is not None and comment["c"] != marker:
            raise SystemExit(
                f"Refusing to touch database {name!r}: {marker.split(' by ')[-1]} did not create it."
            )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(marker))
        )


def drop(server_url, name):
    with connect(server_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def migrated_responder(tree, url):
    """Migrates `url`'s database by the tree's own code and adds a responder with a token:
    (its id, the token)."""
    subprocess.run(
        [sys.executable, "-m", "api", "migrate"],
        cwd=tree,
        env={**os.environ, "DATABASE_URL": url},
        check=True,
    )
    token, token_hash = new_token()
    with connect(url) as conn:
        # NOTE: trees since sessions require an expiry; older ones have no such column.
        conn.execute(
            "DO $$ BEGIN ALTER TABLE api_tokens ALTER COLUMN expires_at SET DEFAULT now() + interval '1 day';"
            " EXCEPTION WHEN undefined_column THEN NULL; END $$"
        )
        user = load_queries().create_user(
            conn,
            username="bench",
            email="bench@example.com",
            role="responder",
            active=True,
            password_hash=hash_password("not used by wrk"),
        )
        conn.execute("INSERT INTO api_tokens (token_hash, user_id) VALUES (%s, %s)", [token_hash, user["id"]])
    return user["id"], token


def prepare(tree, url):
    """Migrated by the tree's own code, a responder with a token, and INCIDENTS incidents."""
    user_id, token = migrated_responder(tree, url)
    with connect(url) as conn:
        conn.execute(
            "INSERT INTO incidents (title, reporter_id) SELECT 'seed ' || n, %s FROM generate_series(1, %s) n",
            [user_id, INCIDENTS],
        )
    return token


@contextlib.contextmanager
def gunicorn(tree, url):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "WEB_CONCURRENCY": str(WORKERS),
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [str(pathlib.Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "api.asgi:app"],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(port)
        time.sleep(1)  # every worker up
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def serves_feed(port, token):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/events", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5):
            return True
    except urllib.error.HTTPError as ex:
        return ex.code != 404


def counts(url):
    with connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM incidents) - %s AS incidents, (SELECT count(*) FROM comments) AS comments,"
            " (SELECT count(*) FROM pg_tables WHERE tablename = 'events') AS has_feed",
            [INCIDENTS],
        ).fetchone()
        row["events"] = (
            conn.execute("SELECT count(*) AS n FROM events").fetchone()["n"] if row["has_feed"] else None
        )
    return row


def export(commit, directory):
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True)
    return directory


def checkouts(stack, configs):
    """{config: its tree}: this checkout for a config of commit None, else the commit exported
    into a temporary folder that `stack` removes."""
    return {
        config: str(ROOT)
        if commit is None
        else export(commit, stack.enter_context(tempfile.TemporaryDirectory()))
        for config, (commit, _) in configs.items()
    }


def main():
    server_url = pgcluster.database_url()
    rows = []
    with contextlib.ExitStack() as stack:
        trees = checkouts(stack, CONFIGS)
        urls = {config: database_url(server_url, name) for config, (_, name) in CONFIGS.items()}
        try:
            for _, name in CONFIGS.values():
                recreate(server_url, name)
            tokens = {config: prepare(trees[config], urls[config]) for config in CONFIGS}
            ports = {config: stack.enter_context(gunicorn(trees[config], urls[config])) for config in CONFIGS}
            assert [serves_feed(ports[c], tokens[c]) for c in CONFIGS] == [False, True, True]
            for n in range(1, ROUNDS + 1):
                names = list(CONFIGS)
                order = names[n % len(names) :] + names[: n % len(names)]
                for scenario, lua in SCENARIOS.items():
                    for config in order:
                        result = run_wrk(ports[config], lua, tokens[config], seconds=SECONDS)
                        rows.append({"round": n, "scenario": scenario, "config": config, **result})
                print(
                    f"round {n}: "
                    + ", ".join(
                        f"{r['scenario']} {r['config']} {r['rps']:.0f}/s" for r in rows if r["round"] == n
                    ),
                    flush=True,
                )
            stack.close()  # every server stops, its last requests done, before the count
            written = {config: counts(url) for config, url in urls.items()}
        finally:
            stack.close()  # the servers stop before their databases go
            for _, name in CONFIGS.values():
                drop(server_url, name)
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(report(rows, written))
    print(f"wrote {RESULT}")


def report(rows, written):
    by = {(r["round"], r["scenario"], r["config"]): r for r in rows}
    rounds = sorted({r["round"] for r in rows})

    def median(scenario, config, field):
        return statistics.median(by[n, scenario, config][field] for n in rounds)

    def ratio(scenario, config):
        return statistics.median(
            by[n, scenario, config]["rps"] / by[n, scenario, WITHOUT]["rps"] for n in rounds
        )

    lines = [
        "# What the change feed costs writers",
        "",
        f"Written by `python -m bench.feed_cost`: gunicorn ({WORKERS} workers each) on fresh databases of one "
        f"PostgreSQL server: the commit before the feed (`{BASE}`), this tree, and the first design of the feed "
        f"(`{COUNTER}`, positions from a counter row locked until commit). wrk with 16 connections for "
        f"{SECONDS} s per run, {len(rounds)} rounds, the order of the servers rotating per round. Medians over "
        "rounds; a ratio is the median of the per-round ratios to the server without the feed.",
        "",
        "| request | server | req/s | ratio | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for scenario in SCENARIOS:
        for config in CONFIGS:
            lines.append(
                f"| {scenario} | {config} | {median(scenario, config, 'rps'):.0f} | {ratio(scenario, config):.2f} | "
                f"{median(scenario, config, 'p50_ms'):.2f} | {median(scenario, config, 'p99_ms'):.2f} | "
                f"{median(scenario, config, 'errors'):.0f} |"
            )
    lines += per_round_table(by, rounds, SCENARIOS, CONFIGS)
    lines.append("")
    for config in list(CONFIGS)[1:]:
        done = written[config]
        lines.append(
            f"{config}: {done['incidents']:,} incidents and {done['comments']:,} comments written, "
            f"{done['events']:,} events (one per write: "
            f"{'yes' if done['events'] == done['incidents'] + done['comments'] else 'NO'})."
        )
    lines.append("")
    return "\n".join(lines)


def per_round_table(by, rounds, scenarios, configs):
    """The lines of a table of each round's req/s, by request and server; `by[round, scenario,
    config]` holds a run's figures."""
    lines = ["", "Per round (req/s):", "", "| round | request | " + " | ".join(configs) + " |"]
    lines.append("|---:|---|" + "---:|" * len(configs))
    for n in rounds:
        for scenario in scenarios:
            cells = " | ".join(f"{by[n, scenario, config]['rps']:.0f}" for config in configs)
            lines.append(f"| {n} | {scenario} | {cells} |")
    return lines


if __name__ == "__main__":
    main()
