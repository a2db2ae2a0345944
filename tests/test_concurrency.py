"""Concurrency against the real gunicorn: racing writers get exactly one success, and a mixed
load of many clients for a fixed time sees no 5xx, no deadlock, and counts that add up."""

import collections
import concurrent.futures
import random
import threading
import time

import pytest

from tests.fix_server import call, gunicorn

RACERS = 8
LOAD_CLIENTS, LOAD_SECONDS = 8, 8


@pytest.fixture
def server(database_url, tmp_path):
    with gunicorn(database_url, tmp_path / "gunicorn.log", WEB_CONCURRENCY=4) as (base, process):
        yield base
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()


def race(requests):
    """Sends every request of `requests` (method, url, body, headers) at the same moment."""
    start = threading.Barrier(len(requests))

    def send(request):
        start.wait()
        return call(*request)

    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def test_parallel_patches_with_the_same_if_match_let_exactly_one_win(
    server, db_conn, responder, make_incident
):
    incident = make_incident(responder)
    url = f"{server}/incidents/{incident['id']}"
    replies = race(
        [
            ("PATCH", url, {"title": f"take {n}"}, {**responder["headers"], "If-Match": '"1"'})
            for n in range(RACERS)
        ]
    )
    assert sorted(reply.status for reply in replies) == [200] + [412] * (RACERS - 1)
    winner = next(reply.body for reply in replies if reply.status == 200)
    row = db_conn.execute("SELECT title, version FROM incidents").fetchone()
    assert row == {"title": winner["title"], "version": 2}
    assert (
        db_conn.execute("SELECT count(*) AS n FROM incident_history WHERE action = 'updated'").fetchone()["n"]
        == 1
    )


@pytest.mark.parametrize(
    "path, body",
    [
        (
            "/users",
            lambda n: {
                "username": ["Ana", "ana", "ANA", "aNa"][n % 4],
                "email": f"ana{n}@example.com",
                "password": "long enough",
            },
        ),
        ("/categories", lambda n: {"name": ["Network", "network", "NETWORK", "netWork"][n % 4]}),
    ],
)
def test_parallel_creation_of_one_name_gives_one_201_and_the_rest_409(server, db_conn, admin, path, body):
    replies = race([("POST", server + path, body(n), admin["headers"]) for n in range(RACERS)])
    assert sorted(reply.status for reply in replies) == [201] + [409] * (RACERS - 1)
    assert all(
        reply.headers["content-type"] == "application/problem+json"
        for reply in replies
        if reply.status == 409
    )
    table = path.strip("/")
    assert db_conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"] == (
        2 if table == "users" else 1
    )


class Client:
    """One simulated user of the mixed load; tallies what the server acknowledged."""

    def __init__(self, base, user, incident_ids, seed):
        self.base, self.headers = base, user["headers"]
        self.incident_ids, self.random = incident_ids, random.Random(seed)
        self.statuses = collections.Counter()
        self.created, self.comments, self.changes = [], 0, 0

    def run(self, until):
        actions = [self.report, self.comment, self.change, self.change, self.read, self.list, self.search]
        while time.monotonic() < until:
            self.random.choice(actions)()

    def send(self, method, path, body=None, headers=None):
        reply = call(method, self.base + path, body, {**self.headers, **(headers or {})})
        self.statuses[reply.status] += 1
        return reply

    def some_incident(self):
        return self.random.choice(self.incident_ids + self.created)

    def report(self):
        reply = self.send(
            "POST", "/incidents", {"title": "load", "severity": self.random.choice(["low", "high"])}
        )
        if reply.status == 201:
            self.created.append(reply.body["id"])

    def comment(self):
        if (
            self.send("POST", f"/incidents/{self.some_incident()}/comments", {"content": "seen"}).status
            == 201
        ):
            self.comments += 1

    def change(self):
        incident_id = self.some_incident()
        current = self.send("GET", f"/incidents/{incident_id}").body
        if current["allowed_transitions"]:
            body = {"status": self.random.choice(current["allowed_transitions"]), "severity": "critical"}
            reply = self.send(
                "PATCH", f"/incidents/{incident_id}", body, {"If-Match": f'"{current["version"]}"'}
            )
            self.changes += reply.status == 200

    def read(self):
        self.send("GET", f"/incidents/{self.some_incident()}/history")

    def list(self):
        self.send("GET", "/incidents?status=open,in_progress&sort=-severity&limit=20")

    def search(self):
        self.send("GET", "/incidents/search?query=load")


def test_mixed_load_sees_no_5xx_and_every_acknowledged_write(server, db_conn, make_user, make_incident):
    responders = [make_user("responder") for _ in range(LOAD_CLIENTS)]
    seeded = [make_incident(responders[0])["id"] for _ in range(4)]
    clients = [Client(server, user, seeded, seed) for seed, user in enumerate(responders)]
    until = time.monotonic() + LOAD_SECONDS
    with concurrent.futures.ThreadPoolExecutor(LOAD_CLIENTS) as pool:
        list(pool.map(lambda client: client.run(until), clients))
    statuses = sum((client.statuses for client in clients), collections.Counter())
    assert set(statuses) <= {200, 201, 409, 412}, statuses
    assert sum(statuses.values()) > 500
    counts = db_conn.execute("""
        SELECT (SELECT count(*) FROM incidents) AS incidents,
               (SELECT count(*) FROM comments) AS comments,
               (SELECT sum(version - 1) FROM incidents) AS changes,
               (SELECT count(*) FROM incident_history WHERE action NOT IN ('created', 'commented')) AS change_entries
    """).fetchone()
    assert counts["incidents"] == len(seeded) + sum(len(client.created) for client in clients)
    assert counts["comments"] == sum(client.comments for client in clients)
    assert counts["changes"] == counts["change_entries"] == sum(client.changes for client in clients)
