"""The feed's guarantee: a reader that has seen position p never later finds a new event at or
below p, even when a transaction that began first commits last (below the HTTP layer and
through it); and under concurrent writers a reader following next_cursor collects every event
once."""

import collections
import concurrent.futures
import itertools
import random
import threading
import time

import pytest
from psycopg.types.json import Jsonb

from api import history
from api.db import connect
from tests.fix_server import call, gunicorn, lock_waiters, row_locked, wait_until

WRITERS, WRITES_EACH = 8, 50
_titles = itertools.count(1)


def positions_of(rows):
    return [row["position"] for row in rows]


def read_after(conn, queries, after):
    """The events after `after` as the feed reads them (one statement, autocommit)."""
    rows = queries.read_feed(conn, after=after, types=None, incident_id=None, limit=1000)
    return [row for row in rows if row["position"] is not None]


def create(conn, queries, user_id):
    fields = {"title": f"Ordered {next(_titles)}", "description": "", "severity": "low", "assignee_id": None}
    event = history.created({**fields, "status": "open", "category_ids": []})
    return queries.create_incident(
        conn, **fields, source="api", dedup_key=None, category_ids=[], actor_id=user_id, **event
    )


def retitle(conn, queries, incident, user_id, title):
    """An update of the incident's title and its record: history entry and event."""
    queries.update_incident(conn, **{**incident, "title": title})
    return queries.record_event(
        conn,
        incident_id=incident["id"],
        actor_id=user_id,
        action="updated",
        changes=Jsonb({"title": [incident["title"], title]}),
        recipients=[],
        events=[],
        follow_event=None,
    )


@pytest.fixture
def three_connections(database_url):
    conns = [connect(database_url) for _ in range(3)]
    yield conns
    for conn in conns:
        conn.close()


def test_a_transaction_that_began_first_and_commits_last_is_not_skipped(
    three_connections, queries, responder
):
    slow, fast, reader = three_connections
    incident = create(fast, queries, responder["id"])
    cursor = positions_of(read_after(reader, queries, 0))[-1]
    with slow.transaction():
        locked = queries.lock_incident(slow, id=incident["id"])  # began first: an older transaction
        retitle(slow, queries, locked, responder["id"], "changed by the slow one")
        other = create(fast, queries, responder["id"])  # commits while the slow one is open
        assert read_after(reader, queries, cursor) == []  # held back behind the open one
    rows = read_after(reader, queries, cursor)
    assert [(row["type"], row["incident_id"]) for row in rows] == [
        ("incident.updated", incident["id"]),
        ("incident.created", other["id"]),
    ]
    assert rows[0]["position"] > cursor


def test_a_transaction_that_began_after_a_commit_the_reader_saw_comes_after_it(
    three_connections, queries, responder
):
    late, fast, reader = three_connections
    incident = create(fast, queries, responder["id"])
    with late.transaction():
        other = create(fast, queries, responder["id"])
        seen = read_after(reader, queries, 0)
        assert seen[-1]["incident_id"] == other["id"]
        cursor = seen[-1]["position"]
        locked = queries.lock_incident(late, id=incident["id"])
        retitle(late, queries, locked, responder["id"], "changed late")
        assert read_after(reader, queries, cursor) == []
    rows = read_after(reader, queries, cursor)
    assert [(row["type"], row["incident_id"]) for row in rows] == [("incident.updated", incident["id"])]


def test_writers_do_not_wait_for_each_other_to_publish(three_connections, queries, responder):
    first, second, reader = three_connections
    with first.transaction():
        mine = create(first, queries, responder["id"])
        with second.transaction():
            theirs = create(second, queries, responder["id"])  # returns at once: no lock between them
        assert not [
            row for row in read_after(reader, queries, 0) if row["incident_id"] in (mine["id"], theirs["id"])
        ]
    rows = [row for row in read_after(reader, queries, 0) if row["incident_id"] in (mine["id"], theirs["id"])]
    assert [row["incident_id"] for row in rows] == [mine["id"], theirs["id"]]


@pytest.fixture
def server(database_url, tmp_path):
    with gunicorn(database_url, tmp_path / "gunicorn.log", WEB_CONCURRENCY=4) as (base, process):
        yield base
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()


class Writer:
    """Writes WRITES_EACH changes of random kinds; counts each acknowledged one by its event type."""

    def __init__(self, base, user, incident_ids, seed):
        self.base, self.headers = base, {"Authorization": f"Bearer {user['token']}"}
        self.incident_ids, self.random = incident_ids, random.Random(seed)
        self.written = collections.Counter()

    def run(self):
        for n in range(WRITES_EACH):
            kind = self.random.choice(["incident.created", "incident.updated", "comment.created"])
            target = f"{self.base}/incidents/{self.random.choice(self.incident_ids)}"
            if kind == "incident.created":
                reply = call("POST", f"{self.base}/incidents", {"title": f"load {n}"}, self.headers)
            elif kind == "incident.updated":
                reply = call("PATCH", target, {"title": f"retitled {id(self)} {n}"}, self.headers)
            else:
                reply = call("POST", f"{target}/comments", {"content": f"note {n}"}, self.headers)
            assert 200 <= reply.status < 300, (kind, reply.status, reply.body)
            self.written[kind] += 1


def follow(base, headers, cursor, stop):
    """Follows the feed from `cursor` with small pages until `stop` is set and nothing is left."""
    seen = []
    while True:
        draining = stop.is_set()
        reply = call("GET", f"{base}/events?after={cursor}&limit=7", headers=headers)
        assert reply.status == 200, reply.body
        seen += reply.body["items"]
        cursor = reply.body["next_cursor"]
        if draining and len(reply.body["items"]) < 7:
            return seen


def test_a_reader_following_the_feed_under_concurrent_writers_sees_every_event_once(
    server, make_user, make_incident
):
    users = [make_user("responder") for _ in range(WRITERS)]
    incident_ids = [make_incident(users[0])["id"] for _ in range(3)]
    headers = {"Authorization": f"Bearer {users[0]['token']}"}
    start = call("GET", f"{server}/events", headers=headers).body
    start = start["items"][-1]["position"] if start["items"] else int(start["next_cursor"])
    writers = [Writer(server, user, incident_ids, seed) for seed, user in enumerate(users)]
    stop = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(WRITERS + 1) as pool:
        reader = pool.submit(follow, server, headers, start, stop)
        list(pool.map(lambda writer: writer.run(), writers))
        stop.set()
        followed = reader.result(timeout=120)
    scanned = follow(server, headers, start, finished())
    assert [e["position"] for e in followed] == [e["position"] for e in scanned]
    assert followed == scanned
    assert len({e["position"] for e in followed}) == len(followed) == WRITERS * WRITES_EACH
    assert collections.Counter(e["type"] for e in followed) == sum(
        (writer.written for writer in writers), collections.Counter()
    )
    assert [e["position"] for e in followed] == sorted(e["position"] for e in followed)
    versions = collections.defaultdict(list)
    for event in followed:
        versions[event["incident_id"]].append(event)
    for events in versions.values():
        incident_versions = [e["incident_version"] for e in events if e["type"].startswith("incident.")]
        assert incident_versions == sorted(set(incident_versions))
        every_version = [e["incident_version"] for e in events]  # comments included
        assert every_version == sorted(every_version)


def finished():
    done = threading.Event()
    done.set()
    return done


def test_a_request_held_open_while_a_later_one_commits_is_not_skipped_over_http(
    server, database_url, db_conn, make_user, make_category
):
    """A POST with a category takes its position, then waits for the category's row; a later
    POST commits meanwhile. The feed shows neither until the first commits, then both in order."""
    headers = {"Authorization": f"Bearer {make_user('responder')['token']}"}
    category = make_category()
    start = call("GET", f"{server}/events?limit=1000", headers=headers).body["next_cursor"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with row_locked(database_url, "categories", category["id"]):
            slow = pool.submit(
                call,
                "POST",
                f"{server}/incidents",
                {"title": "slow", "category_ids": [category["id"]]},
                headers,
            )
            wait_until(lambda: lock_waiters(db_conn) == 1, 10, "the first POST never waited")
            assert call("POST", f"{server}/incidents", {"title": "fast"}, headers).status == 201
            while_open = call("GET", f"{server}/events?after={start}", headers=headers).body
            assert (while_open["items"], while_open["next_cursor"]) == ([], start)
        assert slow.result(timeout=10).status == 201
    events = follow(server, headers, start, finished())
    assert [e["data"]["incident"]["title"] for e in events] == ["slow", "fast"]


def test_a_comment_waiting_for_the_incidents_turn_takes_its_position_after_the_change_it_waited_for(
    database_url, db_conn, queries, responder
):
    """One statement writes a comment and its event: it must neither get its transaction id (its
    position) before it waited for the turn, nor show the incident as it was before."""
    incident = create(db_conn, queries, responder["id"])
    with connect(database_url) as changer, connect(database_url) as commenter:
        commenter_pid = commenter.execute("SELECT pg_backend_pid() AS pid").fetchone()["pid"]
        with changer.transaction():
            changer.execute("SELECT wait_for_incident(%s)", [incident["id"]])  # as lock_incident does
            retitle(changer, queries, incident, responder["id"], "changed first")
            comment = concurrent.futures.ThreadPoolExecutor(1).submit(
                queries.create_comment,
                commenter,
                incident_id=incident["id"],
                author_id=responder["id"],
                content="hi",
            )
            waiting = "SELECT backend_xid, wait_event FROM pg_stat_activity WHERE pid = %s"
            deadline = time.monotonic() + 10
            while (state := db_conn.execute(waiting, [commenter_pid]).fetchone())["wait_event"] != "advisory":
                assert time.monotonic() < deadline, state
            assert state["backend_xid"] is None  # no position taken yet
        comment.result(timeout=10)
    change, commented = read_after(db_conn, queries, 0)[-2:]
    assert (change["type"], commented["type"]) == ("incident.updated", "comment.created")
    assert change["position"] < commented["position"]
    assert commented["incident_version"] == change["incident_version"] == 2
    assert commented["data"]["incident"]["title"] == "changed first"


def test_the_events_of_one_transaction_follow_each_other_from_its_id_on(db_conn, queries, responder):
    """Statement after statement, and after a savepoint rolled back with its event, a transaction's
    events take the positions after its id times 2^20, in order; the next transaction starts anew."""
    with db_conn.transaction():
        xid = db_conn.execute("SELECT pg_current_xact_id()::text::bigint AS xid").fetchone()["xid"]
        first = create(db_conn, queries, responder["id"])
        with pytest.raises(RollbackToSavepoint), db_conn.transaction():
            create(db_conn, queries, responder["id"])
            raise RollbackToSavepoint
        second = create(db_conn, queries, responder["id"])
    later = create(db_conn, queries, responder["id"])
    positions = {row["incident_id"]: row["position"] for row in read_after(db_conn, queries, 0)}
    assert [positions[first["id"]], positions[second["id"]]] == [xid * 2**20 + 1, xid * 2**20 + 2]
    assert positions[later["id"]] % 2**20 == 1 and positions[later["id"]] > positions[second["id"]]


class RollbackToSavepoint(Exception):
    pass
