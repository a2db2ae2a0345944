"""python -m bench.scaling: what PgBouncer, a second app instance and a streaming replica change,
and how long writes fail in a failover. Writes bench/results/scaling.md and scaling.csv.

A primary seeded at SCALE (default 0.1: 100,000 incidents; this compares topologies, not query
plans), its streaming replica and one PgBouncer, made as `make cluster` makes them (password
auth on loopback, replication slot, fsync on), in a temporary folder removed at the end.
PgBouncer serves three pools: `incidents` (transaction mode), `incidents_session` (session mode)
and `incidents_replica` (the replica, transaction mode). Each topology runs with 1 and with 2
gunicorns (2 workers each, on their own ports) against GET /incidents/{id}, the filtered list
and POST /incidents; wrk keeps CLIENTS connections in all, split over the instances (one wrk
per port, summed). What a POST run wrote is deleted after it (and vacuumed), so every run sees
the seeded data. Rounds interleave every configuration (ROUNDS, SECONDS_PER_RUN); per run:
req/s, latency, CPU per request of each process group (from /proc), and, sampled every 100 ms
on the primary, its client backends of the app's database and the replica's replay lag.

Then the failover (FAILOVERS times, on a fresh small primary and replica each): one gunicorn
with a two-host DATABASE_URL, a client writing in a loop, the primary killed
(pg_ctl stop -m immediate) and the replica promoted PROMOTE_AFTER seconds later."""

import contextlib
import csv
import dataclasses
import json
import os
import pathlib
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import psycopg

from api.cli import cluster, commands, migrate
from api.cli.pgcluster import DATABASE_NAME, own_folder
from api.config import Config
from api.db import connect
from bench import indexes, load, seed
from bench.database import user_with_token

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ROUNDS = int(os.environ.get("ROUNDS", 3))
SECONDS = int(os.environ.get("SECONDS_PER_RUN", 10))
SCALE = float(os.environ.get("SCALE", 0.1))
CLIENTS = int(os.environ.get("CLIENTS", 16))
WORKERS = 2  # per instance
FAILOVERS = int(os.environ.get("FAILOVERS", 3))
PROMOTE_AFTER = float(os.environ.get("PROMOTE_AFTER", 2.0))
POOL_TIMEOUT = 5.0  # the app's default, given explicitly: every 503 must come sooner
SAMPLE_EVERY = 0.1
INSTANCES = (1, 2)
ENDPOINTS = (
    "GET /incidents/{id}",
    "GET /incidents?status=open,in_progress&severity=high,critical",
    "POST /incidents",
)
BY_ID, LIST, POST = ENDPOINTS
GROUPS = ("app", "pgbouncer", "primary", "replica")
POOLED = ("pgbouncer-session", "pgbouncer-txn")
# PgBouncer in session mode ignores the app's startup options: the role's defaults, saved by
# the migrations, give its sessions the same settings.
PGBOUNCER_SETTINGS = {**cluster.PGBOUNCER_SETTINGS, "ignore_startup_parameters": "options"}


@dataclasses.dataclass(frozen=True)
class Topology:
    name: str
    endpoints: tuple


TOPOLOGIES = (
    Topology("direct", ENDPOINTS),
    Topology("pgbouncer-session", ENDPOINTS),
    Topology("pgbouncer-txn", ENDPOINTS),
    Topology("pgbouncer-txn+replica", (LIST,)),
)


class Stack:
    """The primary, its replica and PgBouncer of cluster.Layout `layout`, seeded."""

    def __init__(self, base, scale):
        ports = [load.free_port() for _ in range(3)]
        self.layout = cluster.Layout(base, (), *ports)
        self.primary, self.replica = self.layout.node("primary"), self.layout.node("replica")
        start_pair(self.layout, lambda url: seeded(url, scale))
        self.pgbouncer_pid = start_pgbouncer(self.layout)

    def app_env(self, topology):
        """The app's settings in `topology`, as the environment of its gunicorns."""
        pooled = lambda db: self.layout.url(self.layout.pgbouncer_port, db)  # noqa: E731
        if topology == "direct":
            return {"DATABASE_URL": self.layout.url(self.layout.primary_port)}
        if topology == "pgbouncer-session":
            return {"DATABASE_URL": pooled(f"{DATABASE_NAME}_session")}
        env = {"DATABASE_URL": pooled(DATABASE_NAME), "DATABASE_POOLER": "transaction"}
        if topology.endswith("+replica"):
            env["DATABASE_REPLICA_URL"] = pooled(f"{DATABASE_NAME}_replica")
        return env

    def pids(self, apps):
        return {
            "app": [pid for app in apps for pid in app.pids()],
            "pgbouncer": [self.pgbouncer_pid],
            "primary": server_pids(self.primary),
            "replica": server_pids(self.replica),
        }

    def drop_server_connections(self):
        """Closes PgBouncer's idle server connections (KILL, then RESUME each pool), so the next
        run's count of backends starts from none."""
        admin = self.layout.url(self.layout.pgbouncer_port, "pgbouncer")
        with psycopg.connect(admin, autocommit=True) as conn:
            for db in (DATABASE_NAME, f"{DATABASE_NAME}_session", f"{DATABASE_NAME}_replica"):
                conn.execute(f"KILL {db}")  # our own constant names
                conn.execute(f"RESUME {db}")
        with connect(self.primary.url("postgres")) as conn:
            deadline = time.monotonic() + 10
            while app_backends(conn) and time.monotonic() < deadline:
                time.sleep(0.1)

    def forget_writes(self):
        """Deletes what POST runs wrote and vacuums, so that every run sees the seeded data
        (lists got slower with each POST run before), then waits until the replica replayed it.
        No ANALYZE: the statistics of the seeded data still hold, and it took seconds a run."""
        with connect(self.layout.url(self.layout.primary_port)) as conn:
            conn.execute("DELETE FROM incidents WHERE title = 'Load test incident'")  # load.py's POST
            conn.execute("VACUUM incidents")
        with connect(self.primary.url("postgres")) as conn:
            lsn = conn.execute("SELECT pg_current_wal_lsn() AS lsn").fetchone()["lsn"]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not conn.execute(REPLAYED, [lsn]).fetchone()["replayed"]:
                time.sleep(0.1)

    def stop(self):
        with contextlib.suppress(OSError):
            os.kill(self.pgbouncer_pid, signal.SIGINT)
        for node in (self.replica, self.primary):
            node.stop("immediate")
        with contextlib.suppress(OSError):
            self.primary.sockdir.rmdir()


def seeded(url, scale):
    """Migrated with the role's session defaults (as `make cluster` does), seeded, and indexed
    (the seed drops the indexes bench.explain weighs)."""
    commands.migrate_with_defaults(Config(database_url=url))
    seed.seed(url, scale)
    with connect(url) as conn:
        indexes.create(conn)


def start_pair(layout, bootstrap):
    """The primary (bootstrapped with `bootstrap(url)`) and its streaming replica, as
    `make cluster` makes them."""
    layout.base.mkdir(parents=True, exist_ok=True)
    settings = (*cluster._server_settings(layout), "-c shared_buffers=512MB")
    primary, replica = layout.node("primary"), layout.node("replica")
    primary.start(*settings)
    cluster._prepare_primary(primary, layout.password())
    bootstrap(layout.url(layout.primary_port))
    cluster._base_backup(replica, layout)
    replica.start(*settings)


def start_pgbouncer(layout):
    """make cluster's PgBouncer with a session-mode entry besides; its pid."""
    cluster.start_pgbouncer(
        layout,
        {
            DATABASE_NAME: cluster.pooled(layout.primary_port),
            f"{DATABASE_NAME}_session": cluster.pooled(layout.primary_port, "session"),
            f"{DATABASE_NAME}_replica": cluster.pooled(layout.replica_port),
        },
        PGBOUNCER_SETTINGS,
    )
    return int(layout.pidfile("pgbouncer").read_text())


def server_pids(node):
    """The postmaster of `node` and its children (backends, WAL sender or receiver, ...)."""
    postmaster = int((node.datadir / "postmaster.pid").read_text().split()[0])
    return [postmaster, *children(postmaster)]


def children(pid):
    path = pathlib.Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        return [int(child) for child in path.read_text().split()]
    return []


def cpu_ticks(pids):
    ticks = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks


class App:
    """One app instance: gunicorn with gunicorn.conf.py and WORKERS workers on a free port."""

    def __init__(self, env, log):
        self.port = load.free_port()
        env = {
            **{name: value for name, value in os.environ.items() if name != "PROMETHEUS_MULTIPROC_DIR"},
            **env,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(WORKERS),
            "POOL_TIMEOUT": str(POOL_TIMEOUT),
            "LOG_LEVEL": "WARNING",
        }
        gunicorn = pathlib.Path(sys.executable).parent / "gunicorn"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [str(gunicorn), "-c", "gunicorn.conf.py", "api.asgi:app"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_ready(log)

    def _wait_until_ready(self, log):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=2),
            ):
                if len(children(self.process.pid)) >= WORKERS:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not get ready; the end of {log}:\n{cluster._tail(log)}")

    def pids(self):
        return [self.process.pid, *children(self.process.pid)]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


@contextlib.contextmanager
def apps(env, count, log):
    started = []
    try:
        for _ in range(count):
            started.append(App(env, log))
        yield started
    finally:
        for app in started:
            app.stop()


SAMPLE = """
SELECT count(*) AS backends, count(*) FILTER (WHERE state <> 'idle') AS busy,
       (SELECT extract(epoch FROM max(replay_lag)) FROM pg_stat_replication) AS replay_lag,
       (SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)) FROM pg_stat_replication) AS lag_bytes
FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'
"""


REPLAYED = "SELECT coalesce(bool_and(replay_lsn >= %s::pg_lsn), false) AS replayed FROM pg_stat_replication"


def app_backends(conn):
    return conn.execute(SAMPLE, [DATABASE_NAME]).fetchone()["backends"]


class Sampler(threading.Thread):
    """Every SAMPLE_EVERY seconds until stopped: the primary's client backends of the app's
    database (all, and those not idle), and the replica's replay lag, from the primary's
    `postgres` database (so this session is not counted)."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.samples, self.done = url, [], threading.Event()

    def run(self):
        with connect(self.url) as conn:
            while not self.done.is_set():
                self.samples.append(conn.execute(SAMPLE, [DATABASE_NAME]).fetchone())
                self.done.wait(SAMPLE_EVERY)

    def stop(self):
        self.done.set()
        self.join()
        lags = sorted(float(s["replay_lag"] or 0) for s in self.samples)  # NULL: caught up, idle
        return {
            "backends_max": max(s["backends"] for s in self.samples),
            "busy_max": max(s["busy"] for s in self.samples),
            "replay_lag_p99_ms": lags[min(len(lags) - 1, int(0.99 * len(lags)))] * 1000,
            "lag_bytes_max": max(int(s["lag_bytes"] or 0) for s in self.samples),
        }


def wrk(ports, body, token, seconds=None):
    """wrk with CLIENTS connections in all, one wrk per port, run at once and summed. p50 is
    the request-weighted mean of theirs, p99 the higher one."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(load.wrk_script(body, token))
        script.flush()
        threads, clients = max(1, 2 // len(ports)), CLIENTS // len(ports)
        runs = [
            subprocess.Popen(
                [
                    "wrk",
                    f"-t{threads}",
                    f"-c{clients}",
                    f"-d{seconds or SECONDS}s",
                    "-s",
                    script.name,
                    f"http://127.0.0.1:{port}",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for port in ports
        ]
        results = [json.loads(re.search(r"RESULT (\{.*\})", run.communicate()[0])[1]) for run in runs]
    requests = sum(r["requests"] for r in results)
    return {
        "requests": requests,
        "rps": sum(r["requests"] / r["seconds"] for r in results),
        "p50_ms": sum(r["p50_ms"] * r["requests"] for r in results) / max(requests, 1),
        "p99_ms": max(r["p99_ms"] for r in results),
        "errors": sum(r["errors"] for r in results),
    }


def measure(stack, running, body, token, seconds=None):
    """One wrk run against the instances `running`, with CPU per request of each group."""
    before = {group: cpu_ticks(pids) for group, pids in stack.pids(running).items()}
    sampler = Sampler(stack.primary.url("postgres"))
    sampler.start()
    result = wrk([app.port for app in running], body, token, seconds)
    result.update(sampler.stop())
    after = {group: cpu_ticks(pids) for group, pids in stack.pids(running).items()}
    for group in GROUPS:
        ticks = sum(t - before[group].get(pid, 0) for pid, t in after[group].items())
        result[f"cpu_{group}_us"] = ticks / load.TICKS / max(result["requests"], 1) * 1e6
    result["cpu_total_us"] = sum(result[f"cpu_{group}_us"] for group in GROUPS)
    return result


def run_round(stack, number, token, bodies, log):
    """Every topology × instance count × endpoint once; the topologies' order turns each round."""
    rows = []
    turn = (number - 1) % len(TOPOLOGIES)
    for topology in TOPOLOGIES[turn:] + TOPOLOGIES[:turn]:
        for count in INSTANCES:
            with apps(stack.app_env(topology.name), count, log) as running:
                wrk([app.port for app in running], bodies[BY_ID], token, seconds=1)  # warm-up
                for endpoint in topology.endpoints:
                    result = measure(stack, running, bodies[endpoint], token)
                    if endpoint == POST:
                        stack.forget_writes()
                    rows.append(
                        {
                            "round": number,
                            "topology": topology.name,
                            "instances": count,
                            "endpoint": endpoint,
                            **result,
                        }
                    )
                    print(
                        f"round {number} {topology.name} ×{count} {endpoint}: {result['rps']:.0f}/s, "
                        f"{result['backends_max']} backends",
                        flush=True,
                    )
            stack.drop_server_connections()
    return rows


# The failover


def token_for_new_user(url):
    with connect(url) as conn:
        return user_with_token(conn, "responder", "writer")[1]


class Writer(threading.Thread):
    """POST /incidents in a loop, each answer kept as (sent, answered, status) in monotonic time."""

    def __init__(self, port, token):
        super().__init__(daemon=True)
        self.url, self.token = f"http://127.0.0.1:{port}/incidents", token
        self.answers, self.done = [], threading.Event()

    def run(self):
        body = json.dumps({"title": "written during a failover"}).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"}
        while not self.done.is_set():
            sent = time.monotonic()
            try:
                with urllib.request.urlopen(urllib.request.Request(self.url, body, headers), timeout=30) as r:
                    status = r.status
            except urllib.error.HTTPError as ex:
                status = ex.code
            except OSError:
                status = 0  # no answer at all
            self.answers.append((sent, time.monotonic(), status))

    def first_201_after(self, moment):
        return next((done for sent, done, status in self.answers if status == 201 and sent >= moment), None)


def failover_once(base, log):
    """A fresh primary and replica, one app instance on a two-host DATABASE_URL and a writer;
    the primary killed, the replica promoted PROMOTE_AFTER seconds later."""
    ports = [load.free_port() for _ in range(3)]
    layout = cluster.Layout(base, (), *ports)
    tokens = []
    start_pair(layout, lambda url: (migrate.apply(url), tokens.append(token_for_new_user(url))))
    primary, replica = layout.node("primary"), layout.node("replica")
    url = (
        f"postgresql://postgres:{layout.password()}@127.0.0.1:{layout.primary_port},"
        f"127.0.0.1:{layout.replica_port}/{DATABASE_NAME}?target_session_attrs=read-write"
    )
    try:
        with apps({"DATABASE_URL": url}, 1, log) as (app,):
            writer = Writer(app.port, tokens[0])
            writer.start()
            time.sleep(1.0)
            killed = time.monotonic()
            primary.stop("immediate")
            time.sleep(max(0.0, killed + PROMOTE_AFTER - time.monotonic()))
            promoted = time.monotonic()
            replica.run("pg_ctl", "-D", replica.datadir, "-w", "promote")
            deadline = time.monotonic() + 30
            while writer.first_201_after(promoted) is None and time.monotonic() < deadline:
                time.sleep(0.05)
            writer.done.set()
            writer.join()
    finally:
        for node in (replica, primary):
            node.stop("immediate")
    return failover_figures(writer, killed, promoted)


def failover_figures(writer, killed, promoted):
    resumed = writer.first_201_after(promoted)
    during = [(done - sent, status) for sent, done, status in writer.answers if done >= killed]
    unavailable = [seconds for seconds, status in during if status == 503]
    return {
        "kill_to_201_s": None if resumed is None else resumed - killed,
        "promote_to_201_s": None if resumed is None else resumed - promoted,
        "answers_503": len(unavailable),
        "other_errors": sum(1 for _, status in during if status not in (201, 503)),
        "slowest_503_s": max(unavailable, default=0.0),
    }


def failovers(base, log):
    results = []
    for n in range(FAILOVERS):
        results.append(failover_once(base / f"failover-{n}", log))
        print(f"failover {n + 1}: {results[-1]}", flush=True)
    return results


# The report


def median(rows, field, **where):
    values = [r[field] for r in rows if all(r[k] == v for k, v in where.items()) and r[field] is not None]
    return statistics.median(values) if values else None


def ratio(rows, field, top, bottom):
    """Median over rounds of rows(top)[field] / rows(bottom)[field]; `top`, `bottom` filter dicts."""
    pick = lambda n, w: next(r for r in rows if r["round"] == n and all(r[k] == v for k, v in w.items()))  # noqa: E731
    rounds = sorted({r["round"] for r in rows})
    values = [pick(n, top)[field] / pick(n, bottom)[field] for n in rounds if pick(n, bottom)[field]]
    return statistics.median(values) if values else None


def fmt(value, spec):
    return "—" if value is None else format(value, spec)


def report(rows, failed_over):
    rounds = len({r["round"] for r in rows})
    lines = [
        "# Scaling out: PgBouncer, a second app instance, a replica, a failover",
        "",
        f"Written by `python -m bench.scaling` (SCALE={SCALE:g}: {seed.sizes(SCALE)['incidents']:,} incidents): "
        "a primary, its streaming replica and PgBouncer made as `make cluster` makes them, "
        f"gunicorns of {WORKERS} workers each, wrk with {CLIENTS} connections in all ({CLIENTS // 2} per "
        f"instance with 2), {SECONDS} s per run, {rounds} interleaved rounds; medians over rounds. All of it "
        "shares this machine's 2 cores. CPU is µs per request from /proc: app = gunicorn masters and "
        "workers, pgbouncer, primary and replica = each server's postmaster and children. Backends: the "
        "primary's client backends of the app's database, sampled every 100 ms, the most seen (all / "
        "not idle). With 2 instances p50 is the mean of the two wrk processes', p99 the higher one.",
        "",
        *measurements_table(rows),
        "",
        "## Ratios within rounds (median over rounds)",
        "",
        *ratios_table(rows),
        "",
        "## The replica",
        "",
        *replica_lines(rows),
        "",
        "## Failover",
        "",
        *failover_lines(failed_over),
        "",
    ]
    return "\n".join(lines)


def configurations(rows):
    return list(dict.fromkeys((r["topology"], r["instances"], r["endpoint"]) for r in rows))


def measurements_table(rows):
    lines = [
        "| topology | instances | endpoint | req/s | p50 ms | p99 ms | app µs | pgbouncer µs | primary µs "
        "| replica µs | backends | busy | errors |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for topology, count, endpoint in configurations(rows):
        where = {"topology": topology, "instances": count, "endpoint": endpoint}
        m = lambda field, spec: fmt(median(rows, field, **where), spec)  # noqa: E731, B023
        lines.append(
            f"| {topology} | {count} | `{endpoint}` | {m('rps', ',.0f')} | {m('p50_ms', '.2f')} | "
            f"{m('p99_ms', '.2f')} | {m('cpu_app_us', ',.0f')} | {m('cpu_pgbouncer_us', ',.0f')} | "
            f"{m('cpu_primary_us', ',.0f')} | {m('cpu_replica_us', ',.0f')} | {m('backends_max', '.0f')} | "
            f"{m('busy_max', '.0f')} | {m('errors', '.0f')} |"
        )
    return lines


def ratios_table(rows):
    """req/s, and CPU per request of all groups together (which other load on the machine
    disturbs less), against direct and 2 instances against 1."""
    lines = [
        "| endpoint | instances | req/s: session ÷ direct | txn ÷ direct | CPU/req: session ÷ direct "
        "| txn ÷ direct | req/s, 2 ÷ 1 instances: direct | session | txn |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for endpoint in ENDPOINTS:
        for count in INSTANCES:
            per = lambda topology, n=count: {"topology": topology, "instances": n, "endpoint": endpoint}  # noqa: E731, B023
            over = lambda top, bottom, field="rps": fmt(ratio(rows, field, top, bottom), ".2f")  # noqa: E731, B023
            doubled = [over(per(t, 2), per(t, 1)) if count == 2 else "" for t in ("direct", *POOLED)]
            pooled = [over(per(t), per("direct"), field) for field in ("rps", "cpu_total_us") for t in POOLED]
            lines.append(f"| `{endpoint}` | {count} | {' | '.join(pooled)} | {' | '.join(doubled)} |")
    return lines


def replica_lines(rows):
    lines = [
        "The list with `DATABASE_REPLICA_URL` set (through PgBouncer's replica pool) against the same "
        "topology without it:",
        "",
        "| instances | req/s ratio | primary µs/req without | with | ratio | replica µs/req with |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for count in INSTANCES:
        plain = {"topology": "pgbouncer-txn", "instances": count, "endpoint": LIST}
        replica = {**plain, "topology": "pgbouncer-txn+replica"}
        lines.append(
            f"| {count} | {fmt(ratio(rows, 'rps', replica, plain), '.2f')} | "
            f"{fmt(median(rows, 'cpu_primary_us', **plain), ',.0f')} | "
            f"{fmt(median(rows, 'cpu_primary_us', **replica), ',.0f')} | "
            f"{fmt(ratio(rows, 'cpu_primary_us', replica, plain), '.2f')} | "
            f"{fmt(median(rows, 'cpu_replica_us', **replica), ',.0f')} |"
        )
    lines += [
        "",
        "The replica's replay lag while wrk runs `POST /incidents` (the primary's "
        "`pg_stat_replication.replay_lag` every 100 ms; NULL, once caught up and idle, counts as 0):",
        "",
        "| topology | instances | req/s | replay lag p99 ms (median over rounds) | worst round | WAL behind, max bytes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for topology, count, endpoint in configurations(rows):
        if endpoint == POST:
            where = {"topology": topology, "instances": count, "endpoint": POST}
            worst = max(r["replay_lag_p99_ms"] for r in rows if all(r[k] == v for k, v in where.items()))
            lines.append(
                f"| {topology} | {count} | {fmt(median(rows, 'rps', **where), ',.0f')} | "
                f"{fmt(median(rows, 'replay_lag_p99_ms', **where), '.1f')} | {worst:.1f} | "
                f"{fmt(median(rows, 'lag_bytes_max', **where), ',.0f')} |"
            )
    return lines


def failover_lines(results):
    if not results:
        return ["Not run (FAILOVERS=0)."]
    lines = [
        f"{len(results)} times, each on a fresh primary and replica: one gunicorn ({WORKERS} workers, "
        f"POOL_TIMEOUT={POOL_TIMEOUT:g}) on `postgresql://…@primary,replica/incidents?"
        "target_session_attrs=read-write`, one client posting incidents back to back; the primary "
        f"stopped with `pg_ctl stop -m immediate`, the replica promoted (`pg_ctl promote`) {PROMOTE_AFTER:g} s "
        "after the kill.",
        "",
        "| run | kill → first 201 s | promotion → first 201 s | 503 answers | slowest 503 s | other errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    fields = ("kill_to_201_s", "promote_to_201_s", "answers_503", "slowest_503_s", "other_errors")
    specs = (".2f", ".2f", "d", ".3f", "d")
    for n, result in enumerate(results, 1):
        lines.append(
            f"| {n} | " + " | ".join(fmt(result[f], s) for f, s in zip(fields, specs, strict=True)) + " |"
        )
    medians = [median(results, f) for f in fields]
    specs = (".2f", ".2f", ".0f", ".3f", ".0f")
    lines.append("| median | " + " | ".join(fmt(m, s) for m, s in zip(medians, specs, strict=True)) + " |")
    return lines


def write_results(rows, failed_over):
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "scaling.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, list(rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (RESULTS / "scaling.md").write_text(report(rows, failed_over))
    print(f"wrote {RESULTS / 'scaling.md'}")


@contextlib.contextmanager
def workdir():
    """A temporary folder the `postgres` user may enter (as root), removed at the end."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="incidents-scaling-"))
    own_folder(base)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def running_stack(base, scale):
    """A seeded Stack, with a token of its busiest responder and the wrk bodies of ENDPOINTS."""
    stack = Stack(base, scale)
    try:
        token, _, ids = load.prepare(stack.layout.url(stack.layout.primary_port))
        yield stack, token, {s.name: s.lua for s in load.scenarios(ids) if s.name in ENDPOINTS}
    finally:
        stack.stop()


def main():
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: sudo apt-get install wrk")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # stops what it started
    with workdir() as base:
        log = base / "gunicorn.log"
        with running_stack(base / "stack", SCALE) as (stack, token, bodies):
            rows = [row for n in range(1, ROUNDS + 1) for row in run_round(stack, n, token, bodies, log)]
        failed_over = failovers(base, log)
    write_results(rows, failed_over)


if __name__ == "__main__":
    main()
