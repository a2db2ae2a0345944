"""Webhooks (admin only): subscriptions of URLs to the change feed, which the delivery worker
(api/delivery.py) sends; their secrets, delivery log, pings and redeliveries."""

import datetime
import secrets

import falcon
import orjson

from api import params, webhooks
from api.errors import ValidationFailed
from api.operations import operation
from api.resources.common import Resource, created, found, id_page
from api.schemas import (
    DELIVERY,
    EVENT_TYPES,
    PING_RESULT,
    QUEUED,
    REDELIVER,
    WEBHOOK,
    WEBHOOK_CREATE,
    WEBHOOK_CREATED,
    WEBHOOK_PATCH,
    WEBHOOK_SECRET,
    page_of,
)

ADMIN = ["admin"]


class Collection(Resource):
    @operation("List webhooks", response=page_of(WEBHOOK), query=params.PAGE, roles=ADMIN)
    async def on_get(self, req, resp):
        async with self._db.read() as conn:
            resp.media = await id_page(
                req,
                resp,
                lambda args, after_id, limit: self._queries.list_webhooks(
                    conn, after_id=after_id, limit=limit
                ),
            )

    @operation(
        "Subscribe a URL to the change feed (the secret is shown only here)",
        status=201,
        response=WEBHOOK_CREATED,
        body=WEBHOOK_CREATE,
        roles=ADMIN,
        idempotent=True,
    )
    async def on_post(self, req, resp):
        body = req.context.body
        await _check_url(body["url"], self._db.config)
        secret = webhooks.new_secret()
        async with self._db.write(one_statement=True) as conn:
            webhook = await self._queries.create_webhook(
                conn,
                url=body["url"],
                event_types=body.get("event_types", EVENT_TYPES),
                description=body.get("description"),
                secret=secret,
            )
        created(resp, f"/webhooks/{webhook['id']}", {**webhook, "secret": secret})


class Item(Resource):
    @operation("Get a webhook", response=WEBHOOK, roles=ADMIN)
    async def on_get(self, req, resp, webhook_id):
        async with self._db.read() as conn:
            resp.media = found(await self._queries.get_webhook(conn, id=webhook_id), "webhook")

    @operation(
        "Change a webhook: reactivating it resumes from its cursor; moving the cursor replays or skips",
        response=WEBHOOK,
        body=WEBHOOK_PATCH,
        roles=ADMIN,
    )
    async def on_patch(self, req, resp, webhook_id):
        body = req.context.body
        if "url" in body:
            await _check_url(body["url"], self._db.config)
        async with self._db.write(one_statement=True) as conn:
            resp.media = found(
                await self._queries.update_webhook(
                    conn,
                    id=webhook_id,
                    url=body.get("url"),
                    event_types=body.get("event_types"),
                    set_description="description" in body,
                    description=body.get("description"),
                    active=body.get("active"),
                    cursor=body.get("cursor"),
                ),
                "webhook",
            )

    @operation("Delete a webhook", status=204, roles=ADMIN)
    async def on_delete(self, req, resp, webhook_id):
        async with self._db.write(one_statement=True) as conn:
            found(await self._queries.delete_webhook(conn, id=webhook_id), "webhook")
        resp.status = falcon.HTTP_204


class Ping(Resource):
    @operation("Send a signed webhook.ping now", response=PING_RESULT, roles=ADMIN)
    async def on_post(self, req, resp, webhook_id):
        async with self._db.read() as conn:
            webhook = found(await self._queries.webhook_secrets(conn, id=webhook_id), "webhook")
        message_id = f"msg_ping_{secrets.token_hex(12)}"
        body = orjson.dumps(
            {
                "id": message_id,
                "type": "webhook.ping",
                "occurred_at": datetime.datetime.now(datetime.UTC),
                "actor_id": req.context.user["id"],
                "data": {"webhook_id": webhook_id},
            }
        )
        allowed = self._db.config.webhook_allowed_networks
        # NOTE: up to the 15 s timeout with no connection held.
        async with webhooks.session(allowed) as client:
            attempt = await webhooks.send(
                client,
                webhook["url"],
                [webhook["secret"], webhook["previous_secret"]],
                message_id,
                body,
                allowed,
            )
        async with self._db.write(one_statement=True) as conn:
            await self._queries.record_ping(
                conn, webhook_id=webhook_id, event_id=message_id, **_attempt_columns(attempt)
            )
        resp.media = {"delivered": attempt.delivered, **_attempt_columns(attempt)}


class RotateSecret(Resource):
    @operation(
        "Replace the webhook's secret (the old one also signs for 24 hours)",
        response=WEBHOOK_SECRET,
        roles=ADMIN,
    )
    async def on_post(self, req, resp, webhook_id):
        secret = webhooks.new_secret()
        async with self._db.write(one_statement=True) as conn:
            found(await self._queries.rotate_webhook_secret(conn, id=webhook_id, secret=secret), "webhook")
        resp.media = {"secret": secret}


class Deliveries(Resource):
    @operation(
        "List a webhook's delivery attempts, newest first",
        response=page_of(DELIVERY),
        query=params.PAGE,
        roles=ADMIN,
    )
    async def on_get(self, req, resp, webhook_id):
        async with self._db.read() as conn:
            page = await id_page(
                req,
                resp,
                lambda args, before_id, limit: self._queries.list_deliveries(
                    conn, webhook_id=webhook_id, before_id=before_id, limit=limit
                ),
                first=None,
            )
            if not page["items"]:
                found(await self._queries.get_webhook(conn, id=webhook_id), "webhook")
        resp.media = page


class Redeliver(Resource):
    @operation(
        "Send events to the webhook once more (the cursor stays)",
        status=202,
        response=QUEUED,
        body=REDELIVER,
        roles=ADMIN,
        errors=[422],
    )
    async def on_post(self, req, resp, webhook_id):
        positions = [int(event_id.removeprefix("evt_")) for event_id in req.context.body["event_ids"]]
        async with self._db.write() as conn:
            found(await self._queries.get_webhook(conn, id=webhook_id), "webhook")
            result = await self._queries.queue_redeliveries(conn, webhook_id=webhook_id, positions=positions)
        if result["missing"]:
            raise ValidationFailed(
                [
                    {"pointer": f"#/event_ids/{i}", "detail": "names no event the feed keeps"}
                    for i in result["missing"]
                ]
            )
        resp.status = falcon.HTTP_202
        resp.media = {"queued": result["queued"]}


async def _check_url(url, config):
    try:
        await webhooks.check_url(url, config.webhook_allowed_networks)
    except webhooks.UnsafeURL as ex:
        raise ValidationFailed([{"pointer": "#/url", "detail": str(ex)}]) from None


def _attempt_columns(attempt):
    return {"status_code": attempt.status_code, "error": attempt.error, "duration_ms": attempt.duration_ms}
