"""A streaming replica and failover, on loopback: a primary, a replica made from it with
`pg_basebackup -R`, and real gunicorn. Lists read from the replica but a writer sees its own
writes; a replica that falls behind, or is killed, is skipped and then used again; when the
primary dies, writes answer 503 at once and resume by themselves once the replica is promoted."""

import time
import urllib.request

import pytest

from api.cli import migrate, pgcluster
from api.config import Config, ConfigError
from api.db import connect
from api.sql import load_queries
from tests.fix_app import bearer_of_new_user
from tests.fix_server import call, gunicorn, wait_until
from tests.test_metrics import fetch_metrics, samples, value

METRICS_TOKEN = "metrics-token-for-the-tests-0123456789"
MAX_LAG = 4.0
# what the paused-replay test writes before and during the pause
EARLIER, NEW, COMMENT = "reported before the pause", "written while replay is paused", "seen by its author"


def user_with_token(url, username, role):
    with connect(url) as conn:
        return bearer_of_new_user(conn, username, role)


def replica_of(primary, datadir, sockdir):
    replica = pgcluster.Cluster(datadir, sockdir)
    replica.base_backup(f"host={primary.sockdir} port={primary.port} user=postgres")
    replica.start(*pgcluster.FAST)
    return replica


@pytest.fixture(scope="module")
def replicated():
    """A migrated primary with two users (headers by name), and its running replica."""
    with pgcluster.throwaway_cluster() as primary:
        migrate.apply(primary.url())
        users = {"alice": user_with_token(primary.url(), "alice", "responder")}
        users["bob"] = user_with_token(primary.url(), "bob", "reporter")
        base = primary.datadir.parent
        replica = replica_of(primary, base / "replica", base / "replica-sock")
        try:
            yield primary, replica, users
        finally:
            replica.stop("immediate")


@pytest.fixture(scope="module")
def served(replicated, tmp_path_factory):
    primary, replica, users = replicated
    log = tmp_path_factory.mktemp("replica") / "gunicorn.log"
    settings = {
        "DATABASE_REPLICA_URL": replica.url(),
        "REPLICA_MAX_LAG": MAX_LAG,
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    with gunicorn(primary.url(), log, **settings) as (base, _):
        yield base


def titles(base, headers):
    return {incident["title"] for incident in page(base, "/incidents?limit=100", headers)}


def page(base, path, headers):
    reply = call("GET", base + path, headers=headers)
    assert reply.status == 200, (path, reply.body)
    return reply.body["items"]


def reads_served_by(base):
    scrape = urllib.request.Request(base + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(scrape, timeout=10) as response:
        scraped = samples(response.read().decode())
    return {server: value(scraped, "incidents_replica_reads_total", served_by=server) for server in SERVERS}


SERVERS = ("replica", "primary")


def list_read(base, headers):
    """(the server that served a list request, the titles it listed)."""
    return read_by(base, "/incidents?limit=100", "title", headers)


def read_by(base, path, field, headers):
    """(the server that served a GET of the page `path`, the `field` of each item on it)."""
    before = reads_served_by(base)
    items = page(base, path, headers)
    after = reads_served_by(base)
    (server,) = [server for server in SERVERS if after[server] > before[server]]
    return server, frozenset(item[field] for item in items)


def replica_reads_stale(base, path, field, headers, stale, fresh):
    """Whether one of at most 5 reads of `path` came from the replica; each that did showed
    `stale`, and each the primary served `fresh`. NOTE: a busy machine may send a read to the
    primary now and then (a replica connection not had within 0.1 s)."""
    for _ in range(5):
        read = read_by(base, path, field, headers)
        assert read in [("replica", stale), ("primary", fresh)], (path, read)
        if read[0] == "replica":
            return True
    return False


def replica_answers(base, path, headers):
    """Whether a GET of `path` answered 200 from the replica."""
    before = reads_served_by(base)
    reply = call("GET", base + path, headers=headers)
    assert reply.status == 200, (path, reply.body)
    return reads_served_by(base)["replica"] == before["replica"] + 1


def serves_from(base, headers, server):
    """Whether a list request now reads from `server`."""
    return list_read(base, headers)[0] == server


def replay(replica, action):
    with connect(replica.url()) as conn:
        conn.execute(f"SELECT pg_wal_replay_{action}()")  # a constant: pause or resume


def has_incident(cluster, incident_id):
    with connect(cluster.url()) as conn:
        return conn.execute("SELECT 1 FROM incidents WHERE id = %s", [incident_id]).fetchone() is not None


def write_with_key(base, headers):
    """The client's write during a failover, retried with its Idempotency-Key."""
    body = {"title": "during the failover"}
    return call("POST", base + "/incidents", body, {**headers, "Idempotency-Key": "failover-retry"})


def replayed(reply):
    return reply.status == 201 and reply.headers.get("idempotent-replayed") == "true"


def report(base, headers, title, **fields):
    reply = call("POST", base + "/incidents", {"title": title, **fields}, headers)
    assert reply.status == 201, reply.body
    return reply.body


def test_others_read_the_replica_while_the_writer_reads_its_own_writes(replicated, served):
    primary, replica, users = replicated
    alice, bob = users["alice"], users["bob"]
    with connect(primary.url()) as conn:
        category = load_queries().create_category(conn, name="databases")
    earlier = report(served, bob, EARLIER)
    wait_until(lambda: list_read(served, alice) == ("replica", {EARLIER}), 10, "lists never read the replica")
    replay(replica, "pause")
    try:
        written = time.monotonic()
        new = report(served, bob, NEW, category_ids=[category["id"]])
        commented = call("POST", f"{served}/incidents/{earlier['id']}/comments", {"content": COMMENT}, bob)
        assert commented.status == 201, commented.body
        for path, field, stale, fresh in paused_reads(earlier["id"], new["reporter_id"], category["id"]):
            assert read_by(served, path, field, bob) == ("primary", fresh)  # its author's next read
            assert replica_reads_stale(served, path, field, alice, stale, fresh), (
                f"{path} never read the replica"
            )
        time.sleep(max(0.0, written + MAX_LAG + 1.0 - time.monotonic()))
        assert list_read(served, alice) == ("primary", {EARLIER, NEW})  # too far behind: skipped
    finally:
        replay(replica, "resume")
    wait_until(
        lambda: list_read(served, alice) == ("replica", {EARLIER, NEW}), 10, "the replica never caught up"
    )
    # the feed and the other replica reads answer from the replica too (as lists do, now and then
    # from the primary on a busy machine)
    for path in ("/events", "/incidents/search?query=paused", "/incidents/stats"):
        wait_until(
            lambda path=path: replica_answers(served, path, alice), 10, f"{path} never read the replica"
        )
    assert NEW in str(call("GET", served + "/events", headers=alice).body)


def paused_reads(incident_id, user_id, category_id):
    """(path, the field of its items, what the replica has, what the writes while paused made)."""
    return [
        ("/incidents", "title", {EARLIER}, {EARLIER, NEW}),
        (f"/users/{user_id}/incidents", "title", {EARLIER}, {EARLIER, NEW}),
        (f"/categories/{category_id}/incidents", "title", set(), {NEW}),
        (f"/incidents/{incident_id}/comments", "content", set(), {COMMENT}),
        (f"/incidents/{incident_id}/history", "action", {"created"}, {"created", "commented"}),
    ]


def test_the_replica_pools_figures_are_exported_beside_the_primarys(served):
    def pool_max(scraped):
        return {pool: value(scraped, "incidents_db_pool_max_connections", pool=pool) for pool in POOLS}

    both_workers = {pool: 2 * Config.pool_max_size for pool in POOLS}
    wait_until(lambda: pool_max(fetch_metrics(served)) == both_workers, 10, "both workers' pools counted")
    scraped = fetch_metrics(served)
    assert 1 <= value(scraped, "incidents_db_pool_connections", pool="replica") <= 2 * Config.pool_max_size
    assert ("incidents_db_pool_waits_total", frozenset({("pool", "replica")})) in scraped


POOLS = ("primary", "replica")


def test_a_killed_replica_is_skipped_and_used_again_once_back(replicated, served):
    _, replica, users = replicated
    alice, bob = users["alice"], users["bob"]
    wait_until(lambda: serves_from(served, alice, "replica"), 10, "lists never read from the replica")
    replica.stop("immediate")
    try:
        report(served, bob, "written while the replica is down")
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # every read answers, from the primary
            assert "written while the replica is down" in titles(served, alice)
        assert serves_from(served, alice, "primary")
    finally:
        replica.start(*pgcluster.FAST)
    wait_until(lambda: serves_from(served, alice, "replica"), 15, "the replica was not used again")


def test_config_reads_the_replica_settings():
    config = Config.from_env({"DATABASE_URL": "postgresql:///x", "DATABASE_REPLICA_URL": "postgresql:///y"})
    assert (config.database_replica_url, config.replica_max_lag) == ("postgresql:///y", 5.0)
    for wrong in ("0.1", "soon", "-1"):
        with pytest.raises(ConfigError, match="REPLICA_MAX_LAG"):
            Config.from_env({"DATABASE_URL": "postgresql:///x", "REPLICA_MAX_LAG": wrong})


def test_writes_fail_fast_while_the_primary_is_down_and_resume_after_promotion(tmp_path):
    with pgcluster.throwaway_cluster() as primary:
        migrate.apply(primary.url())
        alice = user_with_token(primary.url(), "alice", "responder")
        base = primary.datadir.parent
        replica = replica_of(primary, base / "replica", base / "replica-sock")
        try:
            url = (
                f"postgresql://postgres@/incidents?host={primary.sockdir},{replica.sockdir}"
                "&target_session_attrs=read-write"
            )
            with gunicorn(url, tmp_path / "gunicorn.log", POOL_TIMEOUT=2) as (base, process):
                first = report(base, alice, "before the failover")
                wait_until(
                    lambda: has_incident(replica, first["id"]), 10, "the replica did not get the write"
                )
                primary.stop("immediate")
                for _ in range(5):
                    reply = write_with_key(base, alice)
                    assert reply.status == 503 and reply.headers.get("retry-after"), reply.body
                    assert reply.seconds < 2.0
                replica.run("pg_ctl", "-D", replica.datadir, "-w", "promote")
                wait_until(
                    lambda: write_with_key(base, alice).status == 201, 15, "no write after the promotion"
                )
                # each worker reconnects by itself, and answers the retry with the one incident
                wait_until(
                    lambda: all(replayed(write_with_key(base, alice)) for _ in range(4)),
                    10,
                    "a worker did not reconnect",
                )
                with connect(replica.url()) as conn:
                    count = conn.execute("SELECT count(*) FROM incidents WHERE title = 'during the failover'")
                    assert count.fetchone()["count"] == 1
                assert process.poll() is None  # the same server, not restarted
                assert call("GET", f"{base}/incidents/{first['id']}", headers=alice).status == 200
        finally:
            replica.stop("immediate")
