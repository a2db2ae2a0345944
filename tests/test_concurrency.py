"""Concurrency against the real gunicorn: racing writers get exactly one success, and a mixed
load of many clients for a fixed time sees no 5xx, no deadlock, and counts that add up."""

import collections
import concurrent.futures
import random
import threading
import time

import pytest

from api.resources.tokens import THROTTLE
from tests.fix_server import call, gunicorn, lock_waiters, row_locked, wait_until

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


def test_parallel_wrong_guesses_get_exactly_the_limit_of_tries(server, db_conn, reporter):
    body = {"username": reporter["username"], "password": "wrong password"}
    replies = race([("POST", server + "/auth/tokens", body) for _ in range(3 * THROTTLE["pair_max"])])
    limit = THROTTLE["pair_max"]
    assert sorted(reply.status for reply in replies) == [401] * limit + [429] * (2 * limit)
    assert all(int(reply.headers["retry-after"]) > 0 for reply in replies if reply.status == 429)


def test_parallel_guesses_from_one_address_get_exactly_its_limit_of_tries_across_usernames(server):
    # 16 at a time: all 120 at once would keep connections waiting past POOL_TIMEOUT behind
    # the Argon2 checks (2 cores), an overload rather than a test of the count.
    limit = THROTTLE["address_max"]
    bodies = [{"username": f"nobody{n}", "password": "wrong password"} for n in range(limit + 20)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda body: call("POST", server + "/auth/tokens", body), bodies))
    assert sorted(reply.status for reply in replies) == [401] * limit + [429] * 20


def changes_of(change, actor, target, server):
    url = f"{server}/users/{target['id']}"
    if change == "delete":
        return ("DELETE", url, None, actor["headers"])
    return ("PATCH", url, {"role": "reporter"} if change == "demote" else {"active": False}, actor["headers"])


@pytest.mark.parametrize("change", ["demote", "deactivate", "delete"])
def test_two_admins_acting_on_each_other_at_once_leave_one_active_admin(
    server, database_url, db_conn, make_user, change
):
    ana, bob = make_user("admin"), make_user("admin")
    requests = [changes_of(change, ana, bob, server), changes_of(change, bob, ana, server)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        # Both queue behind a lock on ana's row, so neither has decided before the other started.
        with row_locked(database_url, "users", ana["id"]):
            replies = [pool.submit(call, *request) for request in requests]
            wait_until(
                lambda: lock_waiters(db_conn) == 2 or any(reply.done() for reply in replies),
                10,
                "the requests never got to the lock",
            )
        statuses = sorted(reply.result().status for reply in replies)
    assert statuses == [204 if change == "delete" else 200, 409]
    refused = next(reply.result() for reply in replies if reply.result().status == 409)
    assert refused.headers["content-type"] == "application/problem+json"
    assert "last active admin" in refused.body["detail"]
    admins = db_conn.execute("SELECT count(*) AS n FROM users WHERE role = 'admin' AND active").fetchone()
    assert admins["n"] == 1


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
