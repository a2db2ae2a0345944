"""The delivery worker (`python -m api deliver`, run for real) sending the feed to a real
receiver on loopback: in position order, signed, retried on the schedule with the same id and
body, disabled (admins notified) when the schedule runs out or on 410, resumed from its cursor,
never twice at once however many workers run, and nothing lost when a worker dies or loses
the database."""

import contextlib
import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import standardwebhooks

from api import delivery
from api.config import Config, ConfigError
from api.db import connect
from tests.fix_server import ROOT, wait_until
from tests.fix_webhooks import subscribe
from tests.test_retention import age_events, one_round

STEPS = (0.2, 0.5, 0.3)  # seconds: 4 attempts in all, about a second
SCHEDULE = ",".join(f"{step}s" for step in STEPS)
LATENCY = 0.4  # seconds at most from a retry's due time to its arrival at the receiver


@contextlib.contextmanager
def delivery_worker(database_url, tmp_path, name="worker", allowed_networks="127.0.0.0/8"):
    """`python -m api deliver`, stopped with SIGTERM (if still running) when the block ends."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WEBHOOK_ALLOWED_NETWORKS": allowed_networks,
        "WEBHOOK_RETRY_SCHEDULE": SCHEDULE,
    }
    with open(tmp_path / f"{name}.log", "a") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "deliver"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0


@pytest.fixture
def worker(database_url, tmp_path):
    with delivery_worker(database_url, tmp_path) as process:
        yield process


def incidents(client, user, count, prefix="Incident"):
    return [
        client.simulate_post("/incidents", json={"title": f"{prefix} {n}"}, headers=user["headers"]).json[
            "id"
        ]
        for n in range(count)
    ]


def feed(client, user):
    return client.simulate_get("/events", params={"limit": 1000}, headers=user["headers"]).json["items"]


def messages(received):
    return [json.loads(r.body) for r in received]


def webhook_of(client, admin, webhook):
    return client.simulate_get(f"/webhooks/{webhook['id']}", headers=admin["headers"]).json


def deliveries(client, admin, webhook):
    log = client.simulate_get(
        f"/webhooks/{webhook['id']}/deliveries", params={"limit": 200}, headers=admin["headers"]
    ).json
    return list(reversed(log["items"]))


def test_events_arrive_in_position_order_signed_exactly_as_the_feed_shows_them(
    loopback_client, admin, responder, hook_receiver, worker
):
    webhook = subscribe(loopback_client, admin, hook_receiver.url + "/in")
    [iid] = incidents(loopback_client, responder, 1)
    loopback_client.simulate_patch(
        f"/incidents/{iid}", json={"status": "in_progress"}, headers=responder["headers"]
    )
    loopback_client.simulate_post(
        f"/incidents/{iid}/comments", json={"content": "on it"}, headers=responder["headers"]
    )
    received = hook_receiver.wait_for(3)
    events = feed(loopback_client, admin)
    assert messages(received) == events
    for got, event in zip(received, events, strict=True):
        assert got.headers["webhook-id"] == event["id"]
        assert standardwebhooks.Webhook(webhook["secret"]).verify(got.body, got.headers) == event
    assert [e["type"] for e in events] == ["incident.created", "incident.status_changed", "comment.created"]
    wait_until(
        lambda: webhook_of(loopback_client, admin, webhook)["cursor"] == events[-1]["position"], 5, "cursor"
    )


def test_a_webhook_gets_only_the_types_it_subscribed_to(
    loopback_client, admin, responder, hook_receiver, worker
):
    subscribe(loopback_client, admin, hook_receiver.url, event_types=["comment.created"])
    [iid] = incidents(loopback_client, responder, 1)
    loopback_client.simulate_post(
        f"/incidents/{iid}/comments", json={"content": "hi"}, headers=responder["headers"]
    )
    [got] = messages(hook_receiver.wait_for(1))
    assert got["type"] == "comment.created"
    time.sleep(1.5)  # a poll later, still nothing else
    assert len(hook_receiver.got()) == 1


def test_a_webhook_passes_the_events_it_does_not_subscribe_to_once_they_are_final(
    loopback_client, database_url, db_conn, config, queries, admin, responder, hook_receiver, worker
):
    """Its cursor moves past them, so the retention job prunes them; not past the event of a
    transaction still open, nor past an event it subscribes to."""
    webhook = subscribe(loopback_client, admin, hook_receiver.url, event_types=["incident.deleted"])
    [first, second] = incidents(loopback_client, responder, 2)
    with connect(database_url) as slow, slow.transaction():
        # its position is below those of the events written after it started, which wait for it
        position_from = slow.execute("SELECT pg_current_xact_id()::text::bigint AS x").fetchone()["x"] << 20
        incidents(loopback_client, responder, 30, prefix="Other")
        time.sleep(1.0)  # the worker is woken by those writes, and polls
        assert webhook_of(loopback_client, admin, webhook)["cursor"] < position_from
        queries.delete_incident(slow, id=first, actor_id=admin["id"])
    [deleted] = messages(hook_receiver.wait_for(1))
    assert (deleted["type"], deleted["incident_id"]) == ("incident.deleted", first)
    last = feed(loopback_client, admin)[-1]["position"]
    wait_until(lambda: webhook_of(loopback_client, admin, webhook)["cursor"] >= last, 5, "cursor behind")

    age_events(db_conn, [40] * 33)
    assert one_round(dataclasses.replace(config, event_retention_days=30), queries)["events"] == 33
    loopback_client.simulate_delete(f"/incidents/{second}", headers=admin["headers"])
    got = messages(hook_receiver.wait_for(2))
    assert [(m["type"], m["incident_id"]) for m in got[1:]] == [("incident.deleted", second)]


def test_a_failure_is_retried_on_the_schedule_with_the_same_id_and_body(
    loopback_client, admin, responder, hook_receiver, worker
):
    hook_receiver.statuses = [500, 503]
    webhook = subscribe(loopback_client, admin, hook_receiver.url)
    incidents(loopback_client, responder, 1)
    received = hook_receiver.wait_for(3)
    assert [r.status for r in received] == [500, 503, 200]
    assert len({(r.headers["webhook-id"], r.body) for r in received}) == 1
    gaps = [later.arrived - earlier.arrived for earlier, later in itertools.pairwise(received)]
    for gap, step in zip(gaps, STEPS, strict=False):
        assert step * (1 - delivery.JITTER) <= gap <= step * (1 + delivery.JITTER) + LATENCY, (gaps, STEPS)
    # the worker records the last attempt just after the receiver answered it
    wait_until(
        lambda: (
            [(d["attempt"], d["status_code"]) for d in deliveries(loopback_client, admin, webhook)]
            == [(1, 500), (2, 503), (3, 200)]
        ),
        5,
        "the delivery log does not show the three attempts",
    )


def test_a_receiver_down_for_20_writes_gets_all_20_once_each_in_order(
    loopback_client, admin, responder, hook_receiver, worker
):
    subscribe(loopback_client, admin, hook_receiver.url)
    hook_receiver.default_status = 503
    incidents(loopback_client, responder, 20)
    hook_receiver.wait_for(2)
    hook_receiver.default_status = 200
    accepted = hook_receiver.wait_for(20, accepted=True)
    time.sleep(1.5)
    accepted = hook_receiver.got(accepted=True)
    assert messages(accepted) == feed(loopback_client, admin)
    assert len(accepted) == 20


def test_a_receiver_that_always_fails_gets_the_webhook_disabled_and_admins_notified(
    loopback_client, admin, make_user, responder, hook_receiver, worker
):
    other_admin = make_user("admin")
    hook_receiver.default_status = 500
    webhook = subscribe(loopback_client, admin, hook_receiver.url)
    incidents(loopback_client, responder, 3)
    wait_until(lambda: not webhook_of(loopback_client, admin, webhook)["active"], 20, "still active")
    assert len(hook_receiver.got()) == 4  # the first attempt and the schedule's 3 retries
    disabled = webhook_of(loopback_client, admin, webhook)
    assert "4 attempts" in disabled["disabled_reason"]
    for user in (admin, other_admin):
        [notice] = loopback_client.simulate_get("/notifications", headers=user["headers"]).json["items"]
        assert (notice["event"], notice["webhook_id"], notice["incident_id"], notice["actor_id"]) == (
            "webhook_disabled",
            webhook["id"],
            None,
            None,
        )
    assert loopback_client.simulate_get("/notifications", headers=responder["headers"]).json["items"] == []

    hook_receiver.default_status = 200
    reactivated = loopback_client.simulate_patch(
        f"/webhooks/{webhook['id']}", json={"active": True}, headers=admin["headers"]
    ).json
    assert (reactivated["active"], reactivated["disabled_reason"]) == (True, None)
    accepted = hook_receiver.wait_for(3, accepted=True)
    assert messages(accepted) == feed(loopback_client, admin)  # from the cursor on: nothing lost


def test_410_disables_at_once(loopback_client, admin, responder, hook_receiver, worker):
    hook_receiver.default_status = 410
    webhook = subscribe(loopback_client, admin, hook_receiver.url)
    incidents(loopback_client, responder, 2)
    wait_until(lambda: not webhook_of(loopback_client, admin, webhook)["active"], 10, "still active")
    assert "410" in webhook_of(loopback_client, admin, webhook)["disabled_reason"]
    time.sleep(1.5)
    assert len(hook_receiver.got()) == 1


def test_a_redirect_is_a_failure(loopback_client, admin, responder, hook_receiver, worker):
    hook_receiver.statuses = [301]
    webhook = subscribe(loopback_client, admin, hook_receiver.url + "/old")
    incidents(loopback_client, responder, 1)
    received = hook_receiver.wait_for(2)
    assert [(r.path, r.status) for r in received] == [("/old", 301), ("/old", 200)]
    # the worker records the delivery just after the receiver answered it
    wait_until(
        lambda: [d["status_code"] for d in deliveries(loopback_client, admin, webhook)] == [301, 200],
        5,
        "the delivery log does not show the redirect and the delivery",
    )


def test_moving_the_cursor_back_replays(loopback_client, admin, responder, hook_receiver, worker):
    webhook = subscribe(loopback_client, admin, hook_receiver.url)
    incidents(loopback_client, responder, 2)
    first = hook_receiver.wait_for(2)
    loopback_client.simulate_patch(
        f"/webhooks/{webhook['id']}", json={"cursor": webhook["cursor"]}, headers=admin["headers"]
    )
    again = hook_receiver.wait_for(4)[2:]
    assert messages(again) == messages(first)


def test_moving_the_cursor_back_to_where_a_batch_in_flight_started_replays_it(
    loopback_client, admin, responder, hook_receiver, worker
):
    """The PATCH leaves the cursor as it was when the batch was read; the batch's record must
    not move it past what the PATCH asked to have again."""
    webhook = subscribe(loopback_client, admin, hook_receiver.url)
    hook_receiver.delay = 0.5
    incidents(loopback_client, responder, 2)
    wait_until(lambda: hook_receiver.arrivals == 1, 10, "the first event in flight")
    patched = loopback_client.simulate_patch(
        f"/webhooks/{webhook['id']}", json={"cursor": webhook["cursor"]}, headers=admin["headers"]
    )
    assert patched.json["cursor"] == webhook["cursor"]
    hook_receiver.delay = 0
    sent = hook_receiver.wait_for(4)
    assert messages(sent[2:]) == messages(sent[:2])


def test_redeliver_sends_again_without_moving_the_cursor(
    loopback_client, admin, responder, hook_receiver, worker
):
    webhook = subscribe(loopback_client, admin, hook_receiver.url)
    incidents(loopback_client, responder, 2)
    first, second = hook_receiver.wait_for(2)
    cursor = json.loads(second.body)["position"]
    wait_until(lambda: webhook_of(loopback_client, admin, webhook)["cursor"] == cursor, 5, "cursor")
    queued = loopback_client.simulate_post(
        f"/webhooks/{webhook['id']}/redeliver",
        json={"event_ids": [first.headers["webhook-id"]]},
        headers=admin["headers"],
    )
    assert queued.json == {"queued": 1}
    again = hook_receiver.wait_for(3)[2]
    assert (again.headers["webhook-id"], again.body) == (first.headers["webhook-id"], first.body)
    assert webhook_of(loopback_client, admin, webhook)["cursor"] == cursor


def test_the_address_is_checked_again_when_connecting(
    loopback_client, database_url, tmp_path, admin, responder, hook_receiver
):
    """Webhooks saved while WEBHOOK_ALLOWED_NETWORKS let them reach loopback, by an address and
    by a name, and a worker that runs without it: nothing reaches the receiver."""
    port = hook_receiver.url.rsplit(":", 1)[1]
    by_address = subscribe(loopback_client, admin, hook_receiver.url)
    by_name = subscribe(loopback_client, admin, f"http://localhost:{port}/")
    incidents(loopback_client, responder, 1)
    with delivery_worker(database_url, tmp_path, allowed_networks=""):
        for webhook, why in [
            (by_address, "127.0.0.1 is not a public address"),
            (by_name, "localhost resolves to no public address"),
        ]:
            wait_until(lambda webhook=webhook: deliveries(loopback_client, admin, webhook), 10, "no attempt")
            first = deliveries(loopback_client, admin, webhook)[0]
            assert (first["status_code"], first["attempt"]) == (None, 1)
            assert why in first["error"], first["error"]
    assert hook_receiver.arrivals == 0


def test_a_redelivery_answered_410_disables_the_webhook(
    loopback_client, admin, responder, hook_receiver, worker
):
    webhook = subscribe(loopback_client, admin, hook_receiver.url)
    incidents(loopback_client, responder, 1)
    [first] = hook_receiver.wait_for(1)
    cursor = json.loads(first.body)["position"]
    wait_until(lambda: webhook_of(loopback_client, admin, webhook)["cursor"] == cursor, 5, "cursor")
    hook_receiver.statuses = [410]
    loopback_client.simulate_post(
        f"/webhooks/{webhook['id']}/redeliver",
        json={"event_ids": [first.headers["webhook-id"]]},
        headers=admin["headers"],
    )
    wait_until(lambda: not webhook_of(loopback_client, admin, webhook)["active"], 10, "still active")
    disabled = webhook_of(loopback_client, admin, webhook)
    assert ("410" in disabled["disabled_reason"], disabled["cursor"]) == (True, cursor)
    [notice] = loopback_client.simulate_get("/notifications", headers=admin["headers"]).json["items"]
    assert (notice["event"], notice["webhook_id"]) == ("webhook_disabled", webhook["id"])
    assert [r.status for r in hook_receiver.got()] == [200, 410]


def test_a_worker_killed_mid_delivery_loses_nothing(
    loopback_client, database_url, tmp_path, admin, responder, hook_receiver
):
    subscribe(loopback_client, admin, hook_receiver.url)
    incidents(loopback_client, responder, 3)
    hook_receiver.delay = 2.0
    with delivery_worker(database_url, tmp_path, "first") as first:
        wait_until(lambda: hook_receiver.arrivals == 1, 10, "nothing sent")  # answered slowly
        first.kill()
        first.wait()
    hook_receiver.delay = 0
    with delivery_worker(database_url, tmp_path, "second"):
        wait_until(
            lambda: _ids_accepted(hook_receiver) == _ids(feed(loopback_client, admin)), 20, "lost events"
        )


def test_several_workers_never_send_to_one_webhook_at_once(
    loopback_client, database_url, tmp_path, admin, responder, hook_receiver
):
    in_flight, most = [0], [0]
    lock = threading.Lock()
    record = hook_receiver.record

    def counted(received):
        record(received)
        with lock:
            in_flight[0] -= 1

    answer = hook_receiver.answer

    def entering():
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.02)
        return answer()

    hook_receiver.answer, hook_receiver.record = entering, counted
    subscribe(loopback_client, admin, hook_receiver.url)
    incidents(loopback_client, responder, 30)
    with contextlib.ExitStack() as workers:
        for n in range(3):
            workers.enter_context(delivery_worker(database_url, tmp_path, f"worker{n}"))
        wait_until(lambda: len(hook_receiver.got()) >= 30, 30, "not all delivered")
        time.sleep(1.5)
    assert most[0] == 1
    assert [r.headers["webhook-id"] for r in hook_receiver.got()] == _ids(feed(loopback_client, admin))


def test_a_worker_that_loses_the_database_goes_on_without_loss(
    loopback_client, db_conn, admin, responder, hook_receiver, worker
):
    subscribe(loopback_client, admin, hook_receiver.url)
    incidents(loopback_client, responder, 2)
    hook_receiver.wait_for(2)
    terminated = db_conn.execute(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE application_name = 'incidents-delivery'"
    ).fetchone()["n"]
    assert terminated == 2
    incidents(loopback_client, responder, 2)
    wait_until(lambda: _ids_accepted(hook_receiver) == _ids(feed(loopback_client, admin)), 20, "lost events")
    assert worker.poll() is None


def _ids(events):
    return [e["id"] for e in events]


def _ids_accepted(state):
    """The ids accepted, once each, in the order first accepted."""
    return list(dict.fromkeys(r.headers["webhook-id"] for r in state.got(accepted=True)))


def test_behind_a_transaction_pooler_the_worker_needs_a_url_of_its_own(database_url):
    pooled = Config(database_url="postgresql://pgbouncer/incidents", database_pooler="transaction")
    with pytest.raises(ConfigError, match="DELIVERY_DATABASE_URL"):
        delivery.database_url(pooled)
    direct = Config(**{**pooled.__dict__, "delivery_database_url": database_url})
    assert delivery.database_url(direct) == database_url
