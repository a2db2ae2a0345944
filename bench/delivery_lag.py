"""python -m bench.delivery_lag: what webhooks cost writers, and how long an event takes from
its write to a receiver.

This tree's gunicorn and delivery worker on a fresh database of the configured server, and a
receiver on loopback that answers 200 at once. wrk drives `POST /incidents` and
`POST /incidents/{id}/comments` in rounds that alternate between no webhook and one active
webhook subscribed to everything (created anew each time, so it starts at the feed's end).
The lag of an event is the time the receiver got it minus its `occurred_at` (the start of the
write's transaction). Writes bench/results/delivery_lag.md. The database (delivery_lag) is
created with a marker and dropped at the end."""

import contextlib
import datetime
import http.server
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

from api.cli import migrate, pgcluster
from api.db import connect
from api.sql import load_queries
from bench.database import seed_incidents, user_with_token
from bench.feed_cost import INCIDENTS, ROOT, SCENARIOS, database_url, drop, gunicorn, recreate
from bench.load import cpu_seconds, run_wrk

RESULT = ROOT / "bench" / "results" / "delivery_lag.md"
ROUNDS = int(os.environ.get("ROUNDS", 4))
SECONDS = int(os.environ.get("SECONDS_PER_RUN", 10))
DATABASE = "delivery_lag"
CONFIGS = ["no webhook", "one webhook"]


class Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.arrivals = []  # (time received, the event's occurred_at, its webhook-id)
        super().__init__(("127.0.0.1", 0), ReceiverHandler)


class ReceiverHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps the connection, as receivers behind a web server do

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        occurred = datetime.datetime.fromisoformat(json.loads(body)["occurred_at"]).timestamp()
        self.server.arrivals.append((time.time(), occurred, self.headers["webhook-id"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def receiver():
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()


@contextlib.contextmanager
def delivery_worker(url):
    env = {**os.environ, "DATABASE_URL": url, "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
    process = subprocess.Popen(
        [sys.executable, "-m", "api", "deliver"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
    )
    try:
        yield process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def prepare(url):
    """Migrated, an admin with a token (wrk's), and INCIDENTS incidents to comment on."""
    migrate.apply(url)
    with connect(url) as conn:
        user, token = user_with_token(conn, "admin")
        seed_incidents(conn, user["id"], INCIDENTS)
    return token


def subscribe(url, receiver_url):
    """A new webhook at the feed's end, by the API's own query."""
    with connect(url) as conn:
        conn.execute("DELETE FROM webhooks")
        load_queries().create_webhook(
            conn,
            url=receiver_url,
            event_types=["incident.created", "comment.created"],
            description=None,
            secret="whsec_" + "QUJD" * 8,
        )


def unsubscribe(url):
    with connect(url) as conn:
        conn.execute("DELETE FROM webhooks")


def drained(server, expected, seconds=60):
    deadline = time.monotonic() + seconds
    while len(server.arrivals) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return len(server.arrivals)


def event_count(url):
    with connect(url) as conn:
        return conn.execute("SELECT count(*) AS n FROM events").fetchone()["n"]


def settled_event_count(url):
    """The events' count once it stopped growing: the requests in flight when wrk stopped are done."""
    last, count = -1, event_count(url)
    while count != last:
        time.sleep(1)
        last, count = count, event_count(url)
    return count


def main():
    server_url = pgcluster.database_url()
    url = database_url(server_url, DATABASE)
    rows, lags, worker_cpu = [], [], []
    recreate(server_url, DATABASE)
    try:
        token = prepare(url)
        with receiver() as server, gunicorn(str(ROOT), url) as port, delivery_worker(url) as worker_pid:
            for n in range(1, ROUNDS + 1):
                order = CONFIGS if n % 2 else CONFIGS[::-1]
                for scenario, lua in SCENARIOS.items():
                    for config in order:
                        if config == "one webhook":
                            subscribe(url, f"http://127.0.0.1:{server.server_address[1]}/")
                            server.arrivals.clear()
                            before = event_count(url)
                        cpu_before = cpu_seconds([worker_pid])
                        result = run_wrk(port, lua, token, seconds=SECONDS)
                        if config == "one webhook":
                            expected = settled_event_count(url) - before
                            got = drained(server, expected)
                            lags += [received - occurred for received, occurred, _ in server.arrivals]
                            distinct = len({message_id for *_, message_id in server.arrivals})
                            result["delivered"] = f"{got}/{expected}, {got - distinct} twice"
                            worker_cpu.append((cpu_seconds([worker_pid]) - cpu_before, got))
                            unsubscribe(url)
                        rows.append({"round": n, "scenario": scenario, "config": config, **result})
                        print(
                            n,
                            scenario,
                            config,
                            f"{result['rps']:.0f}/s",
                            result.get("delivered", ""),
                            flush=True,
                        )
    finally:
        drop(server_url, DATABASE)
    RESULT.write_text(report(rows, lags, worker_cpu))
    print(f"wrote {RESULT}")


def report(rows, lags, worker_cpu):
    by = {(r["round"], r["scenario"], r["config"]): r for r in rows}
    rounds = sorted({r["round"] for r in rows})
    lags_ms = sorted(lag * 1000 for lag in lags)

    def percentile(p):
        return lags_ms[min(len(lags_ms) - 1, int(p / 100 * len(lags_ms)))]

    lines = [
        "# What webhooks cost writers, and the delivery lag",
        "",
        f"Written by `python -m bench.delivery_lag`: this tree's gunicorn and one delivery worker "
        f"(`python -m api deliver`), wrk with 16 connections for {SECONDS} s per run, {len(rounds)} rounds "
        "alternating between no webhook and one active webhook (a receiver on loopback answering 200). "
        "A ratio is the median of the per-round ratios to the run without a webhook.",
        "",
        "| request | webhooks | req/s (median) | ratio | p99 ms |",
        "|---|---|---:|---:|---:|",
    ]
    for scenario in SCENARIOS:
        for config in CONFIGS:
            rps = statistics.median(by[n, scenario, config]["rps"] for n in rounds)
            ratio = statistics.median(
                by[n, scenario, config]["rps"] / by[n, scenario, "no webhook"]["rps"] for n in rounds
            )
            p99 = statistics.median(by[n, scenario, config]["p99_ms"] for n in rounds)
            lines.append(f"| {scenario} | {config} | {rps:.0f} | {ratio:.2f} | {p99:.1f} |")
    lines += [
        "",
        f"Delivery lag, write to receiver, over {len(lags_ms):,} events sent under that load: "
        f"p50 {percentile(50):.0f} ms, p90 {percentile(90):.0f} ms, p99 {percentile(99):.0f} ms, "
        f"max {lags_ms[-1]:.0f} ms. The delivery worker used "
        f"{sum(c for c, _ in worker_cpu) / sum(n for _, n in worker_cpu) * 1e6:.0f} µs of CPU per event sent.",
        "",
        "Per round: "
        + "; ".join(
            f"{r['round']} {r['scenario']} {r['config']} {r['rps']:.0f}/s"
            + (f" (delivered {r['delivered']})" if "delivered" in r else "")
            for r in rows
        ),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
