"""python -m bench.stats_write_cost: what the stats rollups cost writers: migration 24's (BASE
f183e58, the commit before them), or migration 29's per category (STATS_COST_BASE=5816944).

Like bench.feed_cost: two gunicorn servers side by side on fresh databases of the configured
server, the tree of BASE (exported with git archive) and this tree; wrk (one thread, so that a
sequence of ids is one sequence) drives against each in interleaved rounds, the order
alternating: `POST /incidents` without and with categories (a new incident is open: no rollup
trigger does any work, but the new and changed indexes take it), `PATCH /incidents/{id}`
changing the severity of a resolved incident in two categories (the triggers move it between
rollup rows, once per category too), resolving an in-progress one in two categories, each once,
and changing a resolved one's categories. Ratios are medians of per-round ratios to BASE. Writes
bench/results/stats_write_cost.md; the databases (stats_cost_*) are dropped at the end."""

import contextlib
import os
import pathlib
import statistics

from api.cli import pgcluster
from api.db import connect
from bench.feed_cost import (
    ROOT,
    checkouts,
    database_url,
    drop,
    gunicorn,
    migrated_responder,
    per_round_table,
    recreate,
)
from bench.load import cpu_seconds, run_wrk

RESULT = ROOT / "bench" / "results" / "stats_write_cost.md"
BASE = os.environ.get("STATS_COST_BASE", "f183e58")  # the last commit before the rollups
ROUNDS = int(os.environ.get("ROUNDS", 6))
SECONDS = int(os.environ.get("SECONDS_PER_RUN", 8))
INCIDENTS = 2000  # resolved ones in categories 1 and 2, for the PATCH
TO_RESOLVE = 60_000  # in-progress ones in categories 1 and 2, each resolved once (HTTP, then SQL)
MARKER = "created by bench.stats_write_cost"
WITHOUT = f"base ({BASE})"
CONFIGS = {WITHOUT: (BASE, "stats_cost_without"), "this tree": (None, "stats_cost_rollups")}
JSON = 'wrk.headers["Content-Type"] = "application/json"\n'
SEVERITIES = '{"low", "medium", "high", "critical"}'
CATEGORY_SETS = '{"[1]", "[1, 2]", "[2, 3]", "[3]"}'
STATEMENTS = 2000  # per batch of the SQL rounds
SQL = {  # the row writes themselves, without what the endpoints add (history, feed, notifications)
    "INSERT an open incident": "INSERT INTO incidents (title, reporter_id, severity) VALUES ('sql', 1, 'high')",
    "UPDATE the severity of a resolved one": "UPDATE incidents SET severity = (ARRAY['low', 'medium', 'high',"
    " 'critical'])[1 + %(n)s %% 4]::incident_severity, updated_at = now(), version = version + 1"
    " WHERE id = 1 + %(n)s %% " + str(INCIDENTS),
    "UPDATE: resolve an in-progress one": "UPDATE incidents SET status = 'resolved', resolved_at = now(),"
    " updated_at = now(), version = version + 1 WHERE id = %(to_resolve)s",
    "INSERT a link of a resolved one": "INSERT INTO incident_categories (incident_id, category_id)"
    " VALUES (1 + %(n)s %% " + str(INCIDENTS) + ", 3)",
    "DELETE a link of a resolved one": "DELETE FROM incident_categories"
    " WHERE incident_id = 1 + %(n)s %% " + str(INCIDENTS) + " AND category_id = 3",
}
SCENARIOS = {
    "POST /incidents": JSON + 'return wrk.format("POST", "/incidents", nil, '
    '\'{"title": "Stats cost incident", "description": "made by bench.stats_write_cost", "severity": "high"}\')',
    "POST /incidents with 2 categories": JSON + 'return wrk.format("POST", "/incidents", nil, '
    '\'{"title": "Stats cost incident", "description": "made by bench.stats_write_cost", "severity": "high",'
    ' "category_ids": [1, 2]}\')',
    "PATCH /incidents/{id} (severity of a resolved one)": JSON
    + f"local severities = {SEVERITIES}\n"
    + f'return wrk.format("PATCH", "/incidents/" .. math.random(1, {INCIDENTS}), nil, '
    "'{\"severity\": \"' .. severities[math.random(1, 4)] .. '\"}')",
    "PATCH /incidents/{id} (resolve an in-progress one)": JSON
    + "next_id = (next_id or {first}) + 1\n"
    + 'return wrk.format("PATCH", "/incidents/" .. next_id, nil, \'{{"status": "resolved"}}\')',
    "PATCH /incidents/{id} (categories of a resolved one)": JSON
    + f"local sets = {CATEGORY_SETS}\n"
    + f'return wrk.format("PATCH", "/incidents/" .. math.random(1, {INCIDENTS}), nil, '
    "'{\"category_ids\": ' .. sets[math.random(1, 4)] .. '}')",
}


def prepare(tree, url):
    """Migrated by the tree's own code, a responder with a token, three categories, INCIDENTS
    resolved incidents (ids 1 to INCIDENTS) and TO_RESOLVE in-progress ones (the next ids), all
    in categories 1 and 2."""
    user_id, token = migrated_responder(tree, url)
    with connect(url) as conn:
        conn.execute("INSERT INTO categories (name) VALUES ('bench 1'), ('bench 2'), ('bench 3')")
        for status, count in (("resolved", INCIDENTS), ("in_progress", TO_RESOLVE)):
            conn.execute(
                "INSERT INTO incidents (title, reporter_id, status, created_at, acknowledged_at, resolved_at)"
                " SELECT 'seed ' || n, %s, %s, created, created + ack,"
                "        CASE WHEN %s = 'resolved' THEN created + ack + res END"
                " FROM generate_series(1, %s) n,"
                " LATERAL (SELECT now() - n * interval '1 minute' AS created, random() * interval '1 hour' AS ack,"
                " random() * interval '1 day' AS res) AS d",
                [user_id, status, status, count],
            )
        conn.execute(
            "INSERT INTO incident_categories (incident_id, category_id)"
            " SELECT id, category FROM incidents, generate_series(1, 2) AS category"
        )
        conn.execute("VACUUM ANALYZE")
    return token


def main():
    server_url = pgcluster.database_url()
    rows = []
    with contextlib.ExitStack() as stack:
        trees = checkouts(stack, CONFIGS)
        urls = {config: database_url(server_url, name) for config, (_, name) in CONFIGS.items()}
        try:
            for _, name in CONFIGS.values():
                recreate(server_url, name, MARKER)
            tokens = {config: prepare(trees[config], urls[config]) for config in CONFIGS}
            cpu = sql_rounds(urls)
            ports = {config: stack.enter_context(gunicorn(trees[config], urls[config])) for config in CONFIGS}
            resolved = dict.fromkeys(CONFIGS, INCIDENTS)  # the last id resolved so far
            for n in range(1, ROUNDS + 1):
                order = list(CONFIGS) if n % 2 else list(reversed(CONFIGS))
                for scenario, lua in SCENARIOS.items():
                    for config in order:
                        pids = server_pids()
                        before = cpu_seconds(pids)
                        script = lua.format(first=resolved[config]) if "{first}" in lua else lua
                        result = run_wrk(ports[config], script, tokens[config], seconds=SECONDS, threads=1)
                        if script != lua:
                            resolved[config] += result["requests"] + 1000  # and those sent unanswered
                        result["pg_cpu_us"] = (cpu_seconds(pids) - before) / result["requests"] * 1e6
                        rows.append({"round": n, "scenario": scenario, "config": config, **result})
                print(
                    f"round {n}: "
                    + ", ".join(
                        f"{r['scenario']} {r['config']} {r['rps']:.0f}/s" for r in rows if r["round"] == n
                    ),
                    flush=True,
                )
            stack.close()
            consistent = rollups_consistent(urls["this tree"])
        finally:
            stack.close()
            for _, name in CONFIGS.values():
                drop(server_url, name)
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(report(rows, consistent) + cpu_report(cpu))
    print(f"wrote {RESULT}")


def server_pids():
    """The processes of the configured PostgreSQL server (children of its postmaster): CPU time
    spent there, per request, is what the writes cost the database, whatever else runs."""
    with connect(pgcluster.database_url()) as conn:
        data_directory = conn.execute("SHOW data_directory").fetchone()["data_directory"]
    postmaster = int(pathlib.Path(data_directory, "postmaster.pid").read_text().split()[0])
    children = []
    for proc in pathlib.Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError):
            if (
                proc.name.isdigit()
                and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster
            ):
                children.append(int(proc.name))
    return children


def sql_rounds(urls):
    """{(statement, config): [PostgreSQL CPU µs per statement, one per round]}: each statement
    STATEMENTS times on one connection per database, the order alternating per round. CPU time
    of the server process, not wall time, so that load from elsewhere on the machine weighs less."""
    cpu = {}
    with contextlib.ExitStack() as stack:
        conns = {config: stack.enter_context(connect(url)) for config, url in urls.items()}
        pids = {
            config: conn.execute("SELECT pg_backend_pid() AS pid").fetchone()["pid"]
            for config, conn in conns.items()
        }
        for n in range(ROUNDS):
            for name, statement in SQL.items():
                for config in list(CONFIGS) if n % 2 else list(reversed(CONFIGS)):
                    before = cpu_seconds([pids[config]])
                    for k in range(STATEMENTS):
                        number = n * STATEMENTS + k  # the SQL resolves the last in-progress ids
                        conns[config].execute(
                            statement, {"n": number, "to_resolve": INCIDENTS + TO_RESOLVE - number}
                        )
                    spent = (cpu_seconds([pids[config]]) - before) / STATEMENTS * 1e6
                    cpu.setdefault((name, config), []).append(spent)
            print(
                f"sql round {n + 1}: " + ", ".join(f"{k[0]} {k[1]} {v[-1]:.0f} µs" for k, v in cpu.items()),
                flush=True,
            )
    return cpu


def cpu_report(cpu):
    lines = [
        "PostgreSQL CPU per statement, the row write alone (µs; medians over rounds, ratio: median of the",
        f"per-round ratios, range in brackets; {STATEMENTS:,} statements per round on one connection):",
        "",
        "| statement | " + " | ".join(CONFIGS) + " | ratio |",
        "|---|" + "---:|" * (len(CONFIGS) + 1),
    ]
    for name in SQL:
        base, mine = cpu[name, WITHOUT], cpu[name, list(CONFIGS)[1]]
        each = [b / a for a, b in zip(base, mine, strict=True)]
        lines.append(
            f"| {name} | {statistics.median(base):.0f} | {statistics.median(mine):.0f} | "
            f"{statistics.median(each):.3f} ({min(each):.2f}–{max(each):.2f}) |"
        )
    return "\n".join(lines) + "\n"


def rollups_consistent(url):
    """Whether the rollups after the run are what a rebuild from the incidents gives."""
    query = (  # trim_scale: the trigger's sums carry trailing zeros a rebuild's do not
        "SELECT array_agg(d ORDER BY d::text) FROM (SELECT * FROM incident_stats_days WHERE n <> 0) d"
        " UNION ALL SELECT array_agg(h ORDER BY h::text) FROM (SELECT metric, created_on, status, severity, source,"
        " unassigned, lower, n, trim_scale(total) FROM incident_stats_durations WHERE n <> 0) h"
        " UNION ALL SELECT array_agg(d ORDER BY d::text) FROM (SELECT * FROM incident_stats_category_days"
        " WHERE n <> 0) d"
        " UNION ALL SELECT array_agg(h ORDER BY h::text) FROM (SELECT category_id, metric, created_on, status,"
        " severity, source, unassigned, lower, n, trim_scale(total) FROM incident_stats_category_durations"
        " WHERE n <> 0) h"
    )
    with connect(url) as conn:
        kept = [row["array_agg"] for row in conn.execute(query).fetchall()]
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT incident_stats_refill()")
            conn.execute("SELECT incident_stats_category_refill()")
            return kept == [row["array_agg"] for row in conn.execute(query).fetchall()]


def report(rows, consistent):
    by = {(r["round"], r["scenario"], r["config"]): r for r in rows}
    rounds = sorted({r["round"] for r in rows})

    def median(scenario, config, field):
        return statistics.median(by[n, scenario, config][field] for n in rounds)

    def ratios(scenario, config, field="rps"):
        return [by[n, scenario, config][field] / by[n, scenario, WITHOUT][field] for n in rounds]

    lines = [
        "# What the stats rollups cost writers",
        "",
        f"Written by `python -m bench.stats_write_cost`: gunicorn ({os.cpu_count()} workers each) on fresh "
        f"databases of one PostgreSQL server, `{BASE}` and this tree, {INCIDENTS:,} resolved and "
        f"{TO_RESOLVE:,} in-progress incidents in two categories in each. wrk (one thread) with 16 connections "
        f"for {SECONDS} s per run, {len(rounds)} rounds, the order of the servers alternating. Medians over "
        f"rounds; a ratio is the median of the per-round ratios to `{BASE}` (their range in brackets).",
        "",
        "| request | server | req/s | ratio | PostgreSQL CPU µs/request | ratio | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in SCENARIOS:
        for config in CONFIGS:
            each, cpu = ratios(scenario, config), ratios(scenario, config, "pg_cpu_us")
            lines.append(
                f"| {scenario} | {config} | {median(scenario, config, 'rps'):.0f} | "
                f"{statistics.median(each):.3f} ({min(each):.2f}–{max(each):.2f}) | "
                f"{median(scenario, config, 'pg_cpu_us'):.0f} | {statistics.median(cpu):.3f} ({min(cpu):.2f}–{max(cpu):.2f}) | "
                f"{median(scenario, config, 'p50_ms'):.2f} | {median(scenario, config, 'p99_ms'):.2f} | "
                f"{median(scenario, config, 'errors'):.0f} |"
            )
    lines += per_round_table(by, rounds, SCENARIOS, CONFIGS)
    lines += [
        "",
        f"The rollups after the run equal a rebuild from the incidents: {'yes' if consistent else 'NO'}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
