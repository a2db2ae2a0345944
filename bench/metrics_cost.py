"""python -m bench.metrics_cost: what counting requests for GET /metrics costs each request.

The same app with METRICS_TOKEN unset (nothing is counted) and set (each request: one counter
increment and one histogram observation, in prometheus_client's multiprocess mode as served),
on one fresh database of a throwaway cluster, driven with `GET /incidents/{id}` and `POST
/incidents` in interleaved rounds (the order swapping per round):

1. the apps in one process through Falcon's ASGI test client, with a second app with metrics
   off as a control, timing the app's own CPU per request (PostgreSQL's is not in it), also
   on `GET /health`, which touches no database: the steadiest figures on a shared machine;
2. two gunicorn servers under wrk: requests per second and the workers' CPU per request;
3. the middleware alone, called in a loop, in both prometheus_client modes.

Writes bench/results/metrics_cost.md."""

import asyncio
import contextlib
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import falcon.testing

from api.app import create_app
from api.cli import migrate, pgcluster
from api.config import Config
from api.db import Database, connect
from bench.database import seed_incidents, user_with_token
from bench.load import cpu_seconds, free_port, run_wrk, wait_until_up

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "metrics_cost.md"
ROUNDS = int(os.environ.get("ROUNDS", 5))
SECONDS = int(os.environ.get("SECONDS_PER_RUN", 8))
WORKERS = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count()))
INCIDENTS = 1000
CONFIGS = {"metrics off": {}, "metrics on": {"METRICS_TOKEN": "bench-metrics-token-0123456789"}}
SCENARIOS = {
    "GET /incidents/{id}": f'return wrk.format("GET", "/incidents/" .. math.random(1, {INCIDENTS}))',
    "POST /incidents": 'wrk.headers["Content-Type"] = "application/json"\n'
    'return wrk.format("POST", "/incidents", nil, \'{"title": "Metrics cost incident", "severity": "high"}\')',
}
LOOP = 200_000
# The middleware alone: RequestMetrics.process_response on one (template, method, status).
MICRO = f"""
import time, types
from api import metrics
middleware = metrics.RequestMetrics()
req = types.SimpleNamespace(uri_template="/incidents/{{incident_id:id}}", method="GET",
                            context=types.SimpleNamespace(started=time.perf_counter()))
resp = types.SimpleNamespace(status="200 OK")
def once():
    req.context.started = time.perf_counter()  # as RequestLog does
    coroutine = middleware.process_response(req, resp, None, True)
    try:
        coroutine.send(None)
    except StopIteration:
        pass
once()
best = None
for _ in range(5):
    started = time.perf_counter()
    for _ in range({LOOP}):
        once()
    took = (time.perf_counter() - started) / {LOOP} * 1e6
    best = took if best is None else min(best, took)
print(f"{{best:.2f}}")
"""


IN_PROCESS_ROUNDS = int(os.environ.get("IN_PROCESS_ROUNDS", 30))
CONTROL = "metrics off, a second app"  # an A/A control: the noise between two equal apps
IN_PROCESS_APPS = {"metrics off": None, "metrics on": CONFIGS["metrics on"]["METRICS_TOKEN"], CONTROL: None}
# scenario: (requests per batch, the request); GET /health shows the app's own work alone
IN_PROCESS_SCENARIOS = {
    "GET /health": (2000, lambda conductor, i, auth: conductor.simulate_get("/health")),
    "GET /incidents/{id}": (
        400,
        lambda conductor, i, auth: conductor.simulate_get(f"/incidents/{i % INCIDENTS + 1}", headers=auth),
    ),
    "POST /incidents": (
        400,
        lambda conductor, i, auth: conductor.simulate_post(
            "/incidents", json={"title": "Metrics cost incident", "severity": "high"}, headers=auth
        ),
    ),
}


async def in_process(url, token):
    """The apps in this process on one event loop, batches of requests alternating between
    them: this process's CPU time (time.process_time: PostgreSQL's is not in it) and wall time
    per request, per batch."""
    rows, dbs, apps = [], [], {}
    for name, metrics_token in IN_PROCESS_APPS.items():
        db = Database(Config(database_url=url, metrics_token=metrics_token))
        await db.open()
        dbs.append(db)
        apps[name] = create_app(db)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        async with contextlib.AsyncExitStack() as stack:
            conductors = {
                name: await stack.enter_async_context(falcon.testing.ASGIConductor(app))
                for name, app in apps.items()
            }
            for n in range(IN_PROCESS_ROUNDS + 1):  # round 0 warms up, and is not kept
                order = list(apps) if n % 2 else list(reversed(apps))
                for scenario, (batch, send) in IN_PROCESS_SCENARIOS.items():
                    for name in order:
                        cpu, wall = time.process_time(), time.perf_counter()
                        for i in range(batch):
                            await send(conductors[name], i, auth)
                        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                        if n:
                            rows.append(
                                {
                                    "round": n,
                                    "scenario": scenario,
                                    "config": name,
                                    "cpu_us": cpu / batch * 1e6,
                                    "wall_us": wall / batch * 1e6,
                                }
                            )
    finally:
        for db in dbs:
            await db.close()
    return rows


def prepare(url):
    """Migrated, a responder with a token, and INCIDENTS incidents."""
    migrate.apply(url)
    with connect(url) as conn:
        user, token = user_with_token(conn, "responder")
        seed_incidents(conn, user["id"], INCIDENTS)
    return token


def workers_of(master_pid):
    pids = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master_pid:
                pids.append(int(stat.parent.name))
    return pids


@contextlib.contextmanager
def gunicorn(url, extra_env):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("METRICS_TOKEN", "PROMETHEUS_MULTIPROC_DIR")},
        "DATABASE_URL": url,
        "PORT": str(port),
        "WEB_CONCURRENCY": str(WORKERS),
        "LOG_LEVEL": "WARNING",
        **extra_env,
    }
    process = subprocess.Popen(
        [str(pathlib.Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "api.asgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(port)
        time.sleep(1)  # every worker up
        yield port, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def measured(port, master_pid, lua, token):
    workers = workers_of(master_pid)
    before = cpu_seconds(workers)
    result = run_wrk(port, lua, token, seconds=SECONDS)
    result["cpu_us"] = (cpu_seconds(workers) - before) / result["requests"] * 1e6
    return result


def micro():
    """µs per call of the middleware, in prometheus_client's single- and multiprocess modes."""
    figures = {}
    with tempfile.TemporaryDirectory() as folder:
        for mode, extra in (("single process", {}), ("multiprocess", {"PROMETHEUS_MULTIPROC_DIR": folder})):
            env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"} | extra
            run = subprocess.run(
                [sys.executable, "-c", MICRO], cwd=ROOT, env=env, capture_output=True, text=True, check=True
            )
            figures[mode] = float(run.stdout.strip())
    return figures


def main():
    rows = []
    with pgcluster.throwaway_cluster() as cluster:
        with connect(cluster.url("postgres")) as conn:
            conn.execute("CREATE DATABASE metrics_cost")
        url = cluster.url("metrics_cost")
        token = prepare(url)
        in_process_rows = in_process_run(url, token)
        with contextlib.ExitStack() as stack:
            servers = {name: stack.enter_context(gunicorn(url, env)) for name, env in CONFIGS.items()}
            for n in range(1, ROUNDS + 1):
                order = list(CONFIGS) if n % 2 else list(reversed(CONFIGS))
                for scenario, lua in SCENARIOS.items():
                    for name in order:
                        result = measured(*servers[name], lua, token)
                        rows.append({"round": n, "scenario": scenario, "config": name, **result})
                        print(
                            f"round {n} {scenario} {name}: {result['rps']:.0f}/s {result['cpu_us']:.0f} µs CPU"
                        )
    write(rows, in_process_rows, micro())


def in_process_run(url, token):
    """in_process() in a process of its own in prometheus_client's multiprocess mode (as served)."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
        run = subprocess.run(
            [sys.executable, "-m", "bench.metrics_cost", "in-process", url, token],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(run.stdout)


def of(rows, scenario, config, key):
    return {r["round"]: r[key] for r in rows if r["scenario"] == scenario and r["config"] == config}


def paired(rows, scenario, config, key, base="metrics off"):
    """The median of the per-round differences `config` − `base`."""
    ours, theirs = of(rows, scenario, config, key), of(rows, scenario, base, key)
    return statistics.median(ours[n] - theirs[n] for n in theirs)


def in_process_line(rows, scenario):
    cpu = [statistics.median(of(rows, scenario, name, "cpu_us").values()) for name in IN_PROCESS_APPS]
    return (
        f"| {scenario} | {cpu[0]:.1f} | {cpu[1]:.1f} | {paired(rows, scenario, 'metrics on', 'cpu_us'):+.1f} µs | "
        f"{paired(rows, scenario, CONTROL, 'cpu_us'):+.1f} µs | "
        f"{paired(rows, scenario, 'metrics on', 'wall_us'):+.1f} µs |"
    )


def write(rows, in_process_rows, micro_figures):
    lines = [
        "# What counting for GET /metrics costs a request",
        "",
        f"In process: the apps on one event loop through Falcon's ASGI test client, "
        f"{IN_PROCESS_ROUNDS} rounds of a batch per scenario and app (2,000 requests of `GET "
        "/health`, which touches no database, 400 of the others), the order swapping per round, in "
        "prometheus_client's multiprocess mode as served. CPU is the app process's own (PostgreSQL's "
        "is not in it); differences are medians of the per-round differences to the app with "
        "metrics off, and the control is a second app with metrics off (the noise between equal apps).",
        "",
        "| scenario | off: CPU µs/req | on: CPU µs/req | CPU on − off | CPU control − off | wall on − off |",
        "|---|---|---|---|---|---|",
        *(in_process_line(in_process_rows, scenario) for scenario in IN_PROCESS_SCENARIOS),
        "",
        f"Under HTTP load: {WORKERS} gunicorn workers per server, wrk with 16 "
        f"connections, {ROUNDS} interleaved rounds of {SECONDS} s per scenario and server, on a "
        f"throwaway cluster (fsync off) with {INCIDENTS} incidents. CPU is the workers' user + system "
        "time per request; ratios are on/off per round, their median shown.",
        "",
        "| scenario | off: req/s | on: req/s | req/s on/off | off: CPU µs/req | on: CPU µs/req | CPU on − off |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario in SCENARIOS:

        def of(name, key, scenario=scenario):
            return [r[key] for r in rows if r["scenario"] == scenario and r["config"] == name]

        off_rps, on_rps = of("metrics off", "rps"), of("metrics on", "rps")
        off_cpu, on_cpu = of("metrics off", "cpu_us"), of("metrics on", "cpu_us")
        ratio = statistics.median(b / a for a, b in zip(off_rps, on_rps, strict=True))
        extra = statistics.median(b - a for a, b in zip(off_cpu, on_cpu, strict=True))
        lines.append(
            f"| {scenario} | {statistics.median(off_rps):.0f} | {statistics.median(on_rps):.0f} | "
            f"{ratio:.3f} | {statistics.median(off_cpu):.0f} | {statistics.median(on_cpu):.0f} | "
            f"{extra:+.1f} µs |"
        )
    lines += [
        "",
        f"The middleware alone (`RequestMetrics.process_response`, best of 5 loops of {LOOP:,} calls):",
        "",
        "| prometheus_client mode | µs per request |",
        "|---|---|",
        *(f"| {mode} | {us:.2f} |" for mode, us in micro_figures.items()),
        "",
        "Each round:",
        "",
        "| round | scenario | server | req/s | CPU µs/req |",
        "|---|---|---|---|---|",
        *(
            f"| {r['round']} | {r['scenario']} | {r['config']} | {r['rps']:.0f} | {r['cpu_us']:.0f} |"
            for r in rows
        ),
        "",
    ]
    RESULT.write_text("\n".join(lines))
    print(RESULT.read_text())


if __name__ == "__main__":
    if sys.argv[1:2] == ["in-process"]:
        print(json.dumps(asyncio.run(in_process(*sys.argv[2:4]))))
    else:
        main()
