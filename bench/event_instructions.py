"""python -m bench.event_instructions: the database's work for the statements that publish to the
change feed, counted in instructions (valgrind's cachegrind), which other load on the machine does
not blur as it blurs time.

A throwaway cluster migrated by this tree, with one user and 1,000 incidents, and without the
search indexes (their page splits make counts vary from run to run). Each statement runs in
`postgres --single` as a prepared generic plan, SHORT and LONG times: its count per run is the
difference divided by LONG - SHORT, which leaves start-up out. Measured: this tree's statements,
and create_incident of the commit before the feed (BASE) on today's schema, i.e. the statement
without its event. Writes bench/results/event_instructions.md. Needs valgrind."""

import os
import pathlib
import re
import subprocess
import sys
import tempfile

from psycopg import sql

from api.cli import pgcluster
from api.db import connect
from api.sql import load_queries
from bench.feed_cost import BASE, export

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "event_instructions.md"
SHORT, LONG = 100, 400
VALGRIND = [
    "valgrind",
    "--tool=cachegrind",
    "--cache-sim=no",
    "--branch-sim=no",
    "--cachegrind-out-file=/dev/null",
]
SEARCH_INDEXES = ("incidents_search_idx", "incidents_active_search_idx", "incidents_word_pairs_idx")
CHANGES = '{"title": [null, "Feed cost incident"], "status": [null, "open"], "severity": [null, "high"]}'
PARAMETERS = {  # name: (type, SQL literal)
    "title": ("text", "'Feed cost incident'"),
    "description": ("text", "'made by bench.event_instructions'"),
    "severity": ("incident_severity", "'high'"),
    "actor_id": ("bigint", "1"),
    "assignee_id": ("bigint", "NULL"),
    "source": ("text", "'api'"),
    "dedup_key": ("text", "NULL"),
    "category_ids": ("bigint[]", "'{}'"),
    "action": ("text", "'created'"),
    "changes": ("jsonb", f"'{CHANGES}'"),
    "recipients": ("bigint[]", "'{}'"),
    "events": ("text[]", "'{}'"),
    "follow_event": ("text", "'followed_reported'"),
    "incident_id": ("bigint", "1"),
    "author_id": ("bigint", "1"),
    "content": ("text", "'feed cost comment'"),
}


def single_user_script(text, runs):
    """The query PREPAREd (its %(name)s placeholders as $n) and EXECUTEd `runs` times, one
    statement a line as `postgres --single` reads them."""
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", text)))
    for n, name in enumerate(names, 1):
        text = text.replace(f"%({name})s", f"${n}")
    text = " ".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    types = ", ".join(PARAMETERS[name][0] for name in names)
    values = ", ".join(PARAMETERS[name][1] for name in names)
    lines = ["SET plan_cache_mode = force_generic_plan", f"PREPARE q({types}) AS {' '.join(text.split())}"]
    return "\n".join(lines + [f"EXECUTE q({values})"] * runs) + "\n"


def instructions(cluster, text, runs):
    postgres = [os.path.join(pgcluster.find_bindir(), "postgres"), "--single", "-D", str(cluster.datadir)]
    command = [
        *(["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []),
        *VALGRIND,
        *postgres,
        *["-c", "TimeZone=UTC", "-c", "jit=off", "incidents"],
    ]
    done = subprocess.run(command, input=single_user_script(text, runs), capture_output=True, text=True)
    if "ERROR:" in done.stdout + done.stderr:
        raise SystemExit(f"the statement failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return int(re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)[1].replace(",", ""))


def per_run(cluster, text):
    return (instructions(cluster, text, LONG) - instructions(cluster, text, SHORT)) / (LONG - SHORT)


def prepare(cluster):
    subprocess.run(
        [sys.executable, "-m", "api", "migrate"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": cluster.url()},
        check=True,
    )
    with connect(cluster.url()) as conn:
        conn.execute(
            "INSERT INTO users (username, email, role, active, password_hash)"
            " VALUES ('bench', 'bench@example.com', 'responder', true, 'not used')"
        )
        conn.execute(
            "INSERT INTO incidents (title, reporter_id) SELECT 'seed ' || n, 1 FROM generate_series(1, 1000) n"
        )
        for index in SEARCH_INDEXES:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(index)))
    cluster.stop()


def main():
    queries = load_queries()
    with tempfile.TemporaryDirectory() as base_tree, pgcluster.throwaway_cluster() as cluster:
        before_feed = load_queries(pathlib.Path(export(BASE, base_tree)) / "sql").create_incident.text
        prepare(cluster)
        statements = {
            f"create_incident of `{BASE}`, before the feed (no event)": before_feed,
            "create_incident": queries.create_incident.text,
            "create_categorized_incident (no ids)": queries.create_categorized_incident.text,
            "create_comment": queries.create_comment.text,
        }
        rows = []
        for name, text in statements.items():
            rows.append(f"| {name} | {per_run(cluster, text):,.0f} |")
            print(rows[-1], flush=True)
    RESULT.write_text(
        "# The feed's statements in instructions\n\n"
        "Written by `python -m bench.event_instructions`: valgrind's cachegrind on `postgres --single`, each "
        f"statement's generic plan run {LONG} and {SHORT} times, the difference divided by {LONG - SHORT}, on "
        "a throwaway cluster of this tree's schema without the search indexes (1,000 incidents).\n\n"
        "| statement | instructions per run |\n|---|---:|\n" + "\n".join(rows) + "\n"
    )
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
