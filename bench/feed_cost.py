"""python -m bench.feed_cost: what the change feed costs the writes that publish to it.

Two gunicorn servers side by side, on two fresh databases of the configured server: the tree of
the commit before the feed (BASE, exported with git archive) and this tree. wrk drives
`POST /incidents` and `POST /incidents/{id}/comments` against each in interleaved rounds (the
order alternates per round), so load from anything else on the machine weighs on both; the
ratio with/without is taken per round, and its median reported. Writes
bench/results/feed_cost.md. The databases (feed_cost_without, feed_cost_with) are created with
a marker and dropped at the end; a database of that name without the marker is never touched."""

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
ROUNDS = int(os.environ.get("ROUNDS", 5))
SECONDS = int(os.environ.get("SECONDS_PER_RUN", 10))
WORKERS = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count()))
INCIDENTS = 1000  # comment targets
MARKER = "created by bench.feed_cost"
CONFIGS = {"without feed": "feed_cost_without", "with feed": "feed_cost_with"}
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


def recreate(server_url, name):
    with connect(server_url) as conn:
        comment = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if comment is not None and comment["c"] != MARKER:
            raise SystemExit(f"Refusing to touch database {name!r}: bench.feed_cost did not create it.")
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(MARKER))
        )


def drop(server_url, name):
    with connect(server_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def prepare(tree, url):
    """Migrated by the tree's own code, a responder with a token, and INCIDENTS incidents."""
    subprocess.run(
        [sys.executable, "-m", "api", "migrate"],
        cwd=tree,
        env={**os.environ, "DATABASE_URL": url},
        check=True,
    )
    token, token_hash = new_token()
    with connect(url) as conn:
        user = load_queries().create_user(
            conn,
            username="bench",
            email="bench@example.com",
            role="responder",
            active=True,
            password_hash=hash_password("not used by wrk"),
        )
        conn.execute("INSERT INTO api_tokens (token_hash, user_id) VALUES (%s, %s)", [token_hash, user["id"]])
        conn.execute(
            "INSERT INTO incidents (title, reporter_id) SELECT 'seed ' || n, %s FROM generate_series(1, %s) n",
            [user["id"], INCIDENTS],
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


def main():
    server_url = pgcluster.database_url()
    rows = []
    with tempfile.TemporaryDirectory() as base_tree:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", BASE], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", base_tree], input=archive, check=True)
        trees = {"without feed": base_tree, "with feed": str(ROOT)}
        urls = {config: database_url(server_url, name) for config, name in CONFIGS.items()}
        try:
            for name in CONFIGS.values():
                recreate(server_url, name)
            tokens = {config: prepare(trees[config], urls[config]) for config in CONFIGS}
            with (
                gunicorn(trees["without feed"], urls["without feed"]) as without,
                gunicorn(trees["with feed"], urls["with feed"]) as with_,
            ):
                ports = {"without feed": without, "with feed": with_}
                assert [serves_feed(ports[c], tokens[c]) for c in CONFIGS] == [False, True]
                for n in range(1, ROUNDS + 1):
                    order = list(CONFIGS) if n % 2 else list(reversed(CONFIGS))
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
            written = {config: counts(url) for config, url in urls.items()}
        finally:
            for name in CONFIGS.values():
                drop(server_url, name)
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(report(rows, written))
    print(f"wrote {RESULT}")


def report(rows, written):
    by = {(r["round"], r["scenario"], r["config"]): r for r in rows}
    rounds = sorted({r["round"] for r in rows})

    def median(scenario, config, field):
        return statistics.median(by[n, scenario, config][field] for n in rounds)

    lines = [
        "# What the change feed costs writers",
        "",
        f"Written by `python -m bench.feed_cost`: gunicorn ({WORKERS} workers) on two fresh databases of one "
        f"PostgreSQL server, the commit before the feed (`{BASE}`) against this tree, wrk with 16 connections "
        f"for {SECONDS} s per run, {len(rounds)} rounds, the order of the two servers alternating per round. "
        "Medians over rounds; the ratio is the median of the per-round ratios.",
        "",
        "| request | without feed req/s | with feed req/s | ratio | p50 ms without / with | p99 ms without / with |"
        " errors without / with |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in SCENARIOS:
        ratio = statistics.median(
            by[n, scenario, "with feed"]["rps"] / by[n, scenario, "without feed"]["rps"] for n in rounds
        )
        cells = {
            field: " / ".join(f"{median(scenario, config, field):{spec}}" for config in CONFIGS)
            for field, spec in (("p50_ms", ".2f"), ("p99_ms", ".2f"), ("errors", ".0f"))
        }
        lines.append(
            f"| {scenario} | {median(scenario, 'without feed', 'rps'):.0f} | {median(scenario, 'with feed', 'rps'):.0f} | "
            f"{ratio:.2f} | {cells['p50_ms']} | {cells['p99_ms']} | {cells['errors']} |"
        )
    lines += [
        "",
        "Per round (req/s):",
        "",
        "| round | request | without feed | with feed | ratio |",
        "|---:|---|---:|---:|---:|",
    ]
    for n in rounds:
        for scenario in SCENARIOS:
            a, b = by[n, scenario, "without feed"]["rps"], by[n, scenario, "with feed"]["rps"]
            lines.append(f"| {n} | {scenario} | {a:.0f} | {b:.0f} | {b / a:.2f} |")
    after = written["with feed"]
    lines += [
        "",
        f"Written with the feed: {after['incidents']:,} incidents and {after['comments']:,} comments, "
        f"{after['events']:,} events (one per write: "
        f"{'yes' if after['events'] == after['incidents'] + after['comments'] else 'NO'}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
