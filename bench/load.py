"""make loadtest: gunicorn on the seeded bench database driven by wrk over loopback, next to
its two limits measured in the same run: pgbench running the endpoint's own SQL with the same
number of clients (PostgreSQL alone) and a no-database Falcon endpoint on the same gunicorn
settings (the framework alone). Rounds interleave every configuration; ratios are per round.
Writes bench/results/http.md and http.csv (python -m bench.load)."""

import csv
import dataclasses
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from psycopg import sql

from api import history
from api.auth import new_token
from api.cli import migrate, pgcluster
from api.db import connect
from api.driver import PLACEHOLDER
from api.incident_rules import RESPONDER_ROLES
from api.sql import load_queries
from bench import database

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ROUNDS = int(os.environ.get("ROUNDS", 3))
SECONDS = int(os.environ.get("SECONDS_PER_RUN", 10))
WORKERS = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count()))  # as gunicorn.conf.py
CLIENTS = int(os.environ.get("CLIENTS", 16))
TICKS = os.sysconf("SC_CLK_TCK")
BY_ID_LIMIT, POST_LIMIT = "limit: pgbench, by-id SQL", "limit: pgbench, POST /incidents SQL"
HELLO_LIMIT = "limit: Falcon without database"


@dataclasses.dataclass
class Scenario:
    name: str
    lua: str  # the body of wrk's request() function, or a whole script


def scenarios(ids):
    post = 'wrk.headers["Content-Type"] = "application/json"\n'
    return [
        Scenario(
            "GET /incidents/{id}",
            f'return wrk.format("GET", "/incidents/" .. math.random(1, {ids["max_incident"]}))',
        ),
        Scenario(
            "GET /incidents?status=open,in_progress&severity=high,critical",
            'return wrk.format("GET", "/incidents?status=open,in_progress&severity=high,critical")',
        ),
        Scenario(
            "GET /users/{id}/incidents",
            f'return wrk.format("GET", "/users/" .. (4 * math.random(1, {ids["max_user"] // 4 - 1})) .. "/incidents")',
        ),
        Scenario(
            "GET /incidents/search?query=host-<n>",
            'return wrk.format("GET", "/incidents/search?query=host-" .. math.random(0, 4999))',
        ),
        Scenario("GET /incidents/stats", 'return wrk.format("GET", "/incidents/stats")'),
        Scenario(
            "POST /incidents",
            post + 'local severities = {"low", "medium", "medium", "high", "critical"}\n'
            'return wrk.format("POST", "/incidents", nil, \'{"title": "Load test incident", '
            '"description": "made by make loadtest", "severity": "\' .. severities[math.random(1, 5)] .. \'"}\')',
        ),
        Scenario(
            "POST /incidents/{id}/comments",
            post + f'return wrk.format("POST", "/incidents/" .. math.random(1, {ids["max_incident"]}) .. '
            '"/comments", nil, \'{"content": "load test comment"}\')',
        ),
    ]


def wrk_script(body, token):
    return f"""
wrk.headers["Authorization"] = "Bearer {token}"
request = function()
  {body}
end
done = function(summary, latency, requests)
  io.write(string.format('RESULT {{"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "errors": %d}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
"""


def run_wrk(port, script_body, token, seconds=SECONDS, threads=2):
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(wrk_script(script_body, token))
        script.flush()
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{CLIENTS}",
                f"-d{seconds}s",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    result = json.loads(re.search(r"RESULT (\{.*\})", out)[1])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICKS


def postgres_pids():
    pids = []
    for proc in pathlib.Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() == "postgres":
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def rss_kib(pid, field="VmRSS"):
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", status)[1])


class Server:
    """gunicorn with gunicorn.conf.py on a free loopback port."""

    def __init__(self, app, url):
        self.port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(WORKERS),
            "LOG_LEVEL": "WARNING",
        }
        self.process = subprocess.Popen(
            [str(pathlib.Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", app],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(self.workers()) < WORKERS:
            time.sleep(0.2)
        wait_until_up(self.port)

    def workers(self):
        children = pathlib.Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(port):
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not come up")


def measured(server, body, token):
    """wrk against `server`, with the app's and PostgreSQL's CPU time per request."""
    workers, pg = server.workers(), postgres_pids()
    app_before, pg_before = cpu_seconds(workers), cpu_seconds(pg)
    result = run_wrk(server.port, body, token)
    result["app_cpu_us"] = (cpu_seconds(workers) - app_before) / result["requests"] * 1e6
    result["pg_cpu_us"] = (cpu_seconds(pg) - pg_before) / result["requests"] * 1e6
    result["peak_rss_mib"] = max(rss_kib(pid, "VmHWM") for pid in workers) / 1024
    return result


def pgbench_line(query, **values):
    """`query` on one line for a pgbench script: each %(name)s becomes values[name], a Python
    value (written as an SQL literal) or a pgbench variable given as sql.SQL(":name")."""
    literal = lambda value: value if isinstance(value, sql.Composable) else sql.Literal(value)  # noqa: E731
    text = PLACEHOLDER.sub(lambda m: literal(values[m[1]]).as_string(None), query.text)
    return " ".join(text.split())


def by_id_script(token_hash, ids):
    """The by-id endpoint's query: token and incident in one."""
    line = pgbench_line(load_queries().get_incident_for_token, token_hash=token_hash, id=sql.SQL(":id"))
    return f"\\set id random(1, {ids['max_incident']})\n{line};\n"


def post_script(token_hash):
    """What POST /incidents runs for the load test's body: the one statement that checks the
    token and inserts the incident with its history entry (severity fixed at high)."""
    queries = load_queries()
    fields = {
        "title": "Load test incident",
        "description": "made by make loadtest",
        "severity": "high",
        "assignee_id": None,
    }
    event = history.created({**fields, "status": "open", "category_ids": []})
    line = pgbench_line(
        queries.create_incident_for_token,
        **fields,
        source="api",
        dedup_key=None,
        category_ids=[],
        token_hash=token_hash,
        assigning_roles=list(RESPONDER_ROLES),
        actor_id=None,
        **event,
    )
    return line + ";\n"


def pgbench(url, script):
    """PostgreSQL alone running `script` (pgbench's own language) with the load test's client count."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as file:
        file.write(script)
        file.flush()
        run = subprocess.run(
            [
                os.path.join(pgcluster.find_bindir(), "pgbench"),
                "-n",
                "-M",
                "prepared",
                "-c",
                str(CLIENTS),
                "-j",
                "2",
                "-T",
                str(SECONDS),
                "-f",
                file.name,
                url,
            ],
            capture_output=True,
            text=True,
        )
    if run.returncode != 0:
        raise RuntimeError(f"pgbench failed ({run.returncode}):\n{run.stderr[-3000:]}\nscript:\n{script}")
    out = run.stdout
    return {
        "rps": float(re.search(r"tps = ([0-9.]+)", out)[1]),
        "mean_ms": float(re.search(r"latency average = ([0-9.]+) ms", out)[1]),
    }


def prepare(url):
    """A token for the busiest responder, its hash, and the id ranges to draw from."""
    queries = load_queries()
    with connect(url) as conn:
        user_id = conn.execute(
            "SELECT assignee_id AS id FROM incidents WHERE assignee_id IS NOT NULL "
            "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()["id"]
        token, token_hash = new_token()
        queries.create_token(conn, token_hash=token_hash, user_id=user_id, ttl_days=1)
        ids = conn.execute(
            "SELECT (SELECT max(id) FROM incidents) AS max_incident, (SELECT max(id) FROM users) AS max_user"
        ).fetchone()
    return token, token_hash, ids


def forget_load(url):
    """Deletes what the POST scenarios wrote, so the next `make bench` sees the seeded data."""
    with connect(url) as conn:
        conn.execute("DELETE FROM comments WHERE content = 'load test comment'")
        conn.execute("DELETE FROM incidents WHERE title = 'Load test incident'")
        conn.execute("VACUUM ANALYZE incidents, comments")


def memory_check(server, token, ids):
    """Worker RSS after ~1k by-id requests and after 100k more."""
    body = scenarios(ids)[0].lua
    run_wrk(server.port, body, token, seconds=1)
    early = sum(rss_kib(pid) for pid in server.workers())
    total, started = 0, time.monotonic()
    while total < 100_000 and time.monotonic() - started < 300:
        total += run_wrk(server.port, body, token, seconds=10)["requests"]
    late = sum(rss_kib(pid) for pid in server.workers())
    return {"requests": total, "early_mib": early / 1024, "late_mib": late / 1024, "growth": late / early - 1}


def main():
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: sudo apt-get install wrk")
    if database.seeded_scale() is None:
        raise SystemExit("Seed the bench database first: make bench")
    url = database.bench_url()
    migrate.apply(url)  # seeded by an earlier release: its later migrations
    token, token_hash, ids = prepare(url)
    limits = {BY_ID_LIMIT: by_id_script(token_hash, ids), POST_LIMIT: post_script(token_hash)}
    rows = []
    app, hello = Server("api.asgi:app", url), Server("bench.hello:app", url)
    try:
        for round_number in range(1, ROUNDS + 1):
            for scenario in scenarios(ids):
                rows.append(
                    {"round": round_number, "config": scenario.name, **measured(app, scenario.lua, token)}
                )
            for config, script in limits.items():
                rows.append({"round": round_number, "config": config, **pgbench(url, script)})
            rows.append(
                {
                    "round": round_number,
                    "config": HELLO_LIMIT,
                    **measured(hello, 'return wrk.format("GET", "/hello")', token),
                    "pg_cpu_us": None,
                }
            )
            print(
                f"round {round_number}: "
                + ", ".join(f"{r['config']} {r['rps']:.0f}/s" for r in rows if r["round"] == round_number),
                flush=True,
            )
        memory = memory_check(app, token, ids)
    finally:
        app.stop()
        hello.stop()
        forget_load(url)
    write_results(rows, memory)


def write_results(rows, memory):
    RESULTS.mkdir(exist_ok=True)
    fields = [
        "round",
        "config",
        "rps",
        "p50_ms",
        "p99_ms",
        "app_cpu_us",
        "pg_cpu_us",
        "peak_rss_mib",
        "errors",
    ]
    with open(RESULTS / "http.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (RESULTS / "http.md").write_text(report(rows, memory))
    print(f"wrote {RESULTS / 'http.md'}")


def report(rows, memory):
    configs = list(dict.fromkeys(r["config"] for r in rows))
    by = {(r["round"], r["config"]): r for r in rows}
    rounds = sorted({r["round"] for r in rows})

    def median(config, field):
        values = [by[n, config].get(field) for n in rounds if by[n, config].get(field) is not None]
        return statistics.median(values) if values else None

    def ratio(a, b):
        return statistics.median(by[n, a]["rps"] / by[n, b]["rps"] for n in rounds)

    by_id = configs[0]
    fmt = lambda v, spec: "—" if v is None else format(v, spec)  # noqa: E731
    lines = [
        "# HTTP load on loopback: the API against its two limits",
        "",
        f"Written by `make loadtest`: gunicorn ({WORKERS} workers as gunicorn.conf.py sets them up) on the bench database, "
        f"wrk with {CLIENTS} connections for {SECONDS} s per configuration, {len(rounds)} interleaved rounds; "
        "medians over rounds. CPU is per request, from /proc: the gunicorn workers (app) and every PostgreSQL "
        "process (pg). Peak RSS is the largest worker's VmHWM.",
        "",
        "pgbench reports a mean latency, shown in the p50 column in italics. The serving-model A/B and the "
        "side-by-side run against FastAPI + asyncpg are in bench/README.md.",
        "",
        "| configuration | req/s | p50 ms | p99 ms | app CPU µs/req | pg CPU µs/req | peak RSS MiB | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for config in configs:
        p50 = (
            fmt(median(config, "p50_ms"), ".2f")
            if median(config, "mean_ms") is None
            else f"*{median(config, 'mean_ms'):.2f}*"
        )
        lines.append(
            f"| {config} | {median(config, 'rps'):.0f} | {p50} | "
            f"{fmt(median(config, 'p99_ms'), '.2f')} | {fmt(median(config, 'app_cpu_us'), '.0f')} | "
            f"{fmt(median(config, 'pg_cpu_us'), '.0f')} | {fmt(median(config, 'peak_rss_mib'), '.1f')} | "
            f"{fmt(median(config, 'errors'), '.0f')} |"
        )
    lines += [
        "",
        "## Ratios (median of the per-round ratios)",
        "",
        "| ratio | measured | target |",
        "|---|---:|---:|",
        f"| GET /incidents/{{id}} ÷ pgbench on its SQL | {ratio(by_id, BY_ID_LIMIT):.2f} | ≥ 0.09 |",
        f"| GET /incidents/{{id}} ÷ Falcon without database | {ratio(by_id, HELLO_LIMIT):.2f} | — |",
        f"| filtered list ÷ GET /incidents/{{id}} | {ratio(configs[1], by_id):.2f} | — |",
        f"| POST /incidents ÷ GET /incidents/{{id}} | {ratio('POST /incidents', by_id):.2f} | — |",
        f"| POST /incidents ÷ pgbench on its SQL | {ratio('POST /incidents', POST_LIMIT):.2f} | — |",
        f"| pgbench: POST /incidents SQL ÷ by-id SQL | {ratio(POST_LIMIT, BY_ID_LIMIT):.2f} | — |",
        "",
        "## Memory",
        "",
        f"Worker RSS (sum over {WORKERS} workers) after ~1k by-id requests: {memory['early_mib']:.1f} MiB; "
        f"after {memory['requests']:,} more: {memory['late_mib']:.1f} MiB ({memory['growth']:+.1%}; target within ±10 %).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
