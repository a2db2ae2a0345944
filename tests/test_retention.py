"""The retention job deletes what no request needs any more (idempotency keys past 24 hours,
failed logins past the throttle's window, feed events past EVENT_RETENTION_DAYS), keeps the
rest, and runs in every served worker without anyone starting it."""

import asyncio
import dataclasses
import time

import falcon.testing

from api import retention
from api.app import create_app
from api.db import Database
from api.resources.tokens import THROTTLE


def leave_rows(db_conn, user_id, hours_ago):
    """One idempotency key, one failed login and one token expired `hours_ago` (or expiring in
    a day, for 0), tagged by their age."""
    db_conn.execute(
        "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body, created_at)"
        " VALUES (%s, %s, sha256(''), 201, '', now() - make_interval(hours => %s))",
        [user_id, f"key {hours_ago}", hours_ago],
    )
    db_conn.execute(
        "INSERT INTO login_failures (throttle_key, failed_at) VALUES (sha256(%s), now() - make_interval(hours => %s))",
        [str(hours_ago).encode(), hours_ago],
    )
    db_conn.execute(
        "INSERT INTO api_tokens (token_hash, user_id, expires_at)"
        " VALUES (sha256(%s), %s, now() + make_interval(hours => CASE WHEN %s = 0 THEN 24 ELSE -%s END))",
        [str(hours_ago).encode(), user_id, hours_ago, hours_ago],
    )


def remaining(db_conn):
    keys = db_conn.execute("SELECT key FROM idempotency_keys ORDER BY key").fetchall()
    failures = db_conn.execute("SELECT count(*) AS n FROM login_failures").fetchone()["n"]
    tokens = db_conn.execute("SELECT count(*) AS n FROM api_tokens WHERE expires_at <= now()").fetchone()["n"]
    return [row["key"] for row in keys], failures, tokens


def test_a_round_deletes_only_what_has_expired(config, queries, db_conn, reporter, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 2)  # several batches per table
    ages = (0, 1, 23, 25, 48, 100)  # hours
    for hours_ago in ages:
        leave_rows(db_conn, reporter["id"], hours_ago)
    within_window = sum(hours < THROTTLE["window"].total_seconds() / 3600 for hours in ages)
    purged = one_round(config, queries)
    assert purged == {
        "api_tokens": len(ages) - 1,
        "idempotency_keys": 3,
        "login_failures": len(ages) - within_window,
        "events": 0,
        "webhook_deliveries": 0,
    }
    assert remaining(db_conn) == (["key 0", "key 1", "key 23"], within_window, 0)
    assert (
        db_conn.execute(
            "SELECT count(*) AS n FROM api_tokens WHERE user_id = %s", [reporter["id"]]
        ).fetchone()["n"]
        == 2
    )


def age_events(db_conn, days_ago):
    """The feed's events, oldest position first, made `days_ago` old (one age per event)."""
    positions = [row["position"] for row in db_conn.execute("SELECT position FROM events ORDER BY position")]
    for position, days in zip(positions, days_ago, strict=True):
        db_conn.execute(
            "UPDATE events SET occurred_at = now() - make_interval(days => %s) WHERE position = %s",
            [days, position],
        )
    return positions


def test_a_round_prunes_the_events_older_than_the_retention_from_the_start_of_the_feed(
    config, queries, db_conn, client, reporter, make_incident, monkeypatch
):
    monkeypatch.setattr(retention, "BATCH", 2)  # several batches
    for _ in range(7):
        make_incident(reporter)
    # the fifth is old again (a transaction that ran long): kept, since one before it is kept
    positions = age_events(db_conn, [40, 35, 31, 31, 29, 31, 0])
    assert one_round(dataclasses.replace(config, event_retention_days=30), queries)["events"] == 4
    kept = [row["position"] for row in db_conn.execute("SELECT position FROM events ORDER BY position")]
    assert kept == positions[4:]
    assert (
        db_conn.execute("SELECT through_position FROM events_pruned").fetchone()["through_position"]
        == (positions[3])
    )
    assert (
        client.simulate_get("/events", headers=reporter["headers"]).json["items"][0]["position"]
        == positions[4]
    )
    pruned = client.simulate_get("/events", params={"after": positions[2]}, headers=reporter["headers"])
    assert pruned.status_code == 410
    assert pruned.json["title"] == "Events pruned"


def test_the_served_app_runs_the_job_by_itself(config, db_conn, reporter):
    leave_rows(db_conn, reporter["id"], 30)
    leave_rows(db_conn, reporter["id"], 0)
    app = create_app(Database(dataclasses.replace(config, retention_interval_seconds=0.1)), lifespan=True)

    async def serve_a_while():
        async with falcon.testing.ASGIConductor(app):
            deadline = time.monotonic() + 10
            # one table per transaction: wait for the whole round, not just its first table
            while remaining(db_conn) != (["key 0"], 1, 0) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)

    falcon.async_to_sync(serve_a_while)
    assert remaining(db_conn) == (["key 0"], 1, 0)


def one_round(config, queries):
    """What one retention round on a pool of its own deleted."""
    db = Database(config)

    async def run():
        await db.open()
        try:
            return await retention.purge(db, queries)
        finally:
            await db.close()

    return falcon.async_to_sync(run)


def test_events_an_active_webhook_has_yet_to_deliver_are_kept(
    config, queries, db_conn, reporter, make_incident
):
    for _ in range(4):
        make_incident(reporter)
    positions = age_events(db_conn, [40, 40, 40, 40])
    webhook = queries.create_webhook(
        db_conn,
        url="http://192.0.2.1/",
        event_types=["incident.created"],
        description=None,
        secret="whsec_QUJD",
    )
    db_conn.execute("UPDATE webhooks SET cursor = %s", [positions[1]])
    db_conn.execute(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, attempt, duration_ms, created_at) "
        "VALUES (%s, 'evt_1', 1, 1, now() - interval '40 days'), (%s, 'evt_2', 1, 1, now())",
        [webhook["id"], webhook["id"]],
    )
    pruned = one_round(dataclasses.replace(config, event_retention_days=30), queries)
    assert (pruned["events"], pruned["webhook_deliveries"]) == (2, 1)
    kept = [row["position"] for row in db_conn.execute("SELECT position FROM events ORDER BY position")]
    assert kept == positions[2:]

    db_conn.execute("UPDATE webhooks SET active = false")  # a disabled webhook holds nothing back
    assert one_round(dataclasses.replace(config, event_retention_days=30), queries)["events"] == 2
