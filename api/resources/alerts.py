"""POST /alerts (PagerDuty Events API v2) and POST /alerts/alertmanager (Alertmanager webhook
v4): monitoring systems open, acknowledge and resolve incidents, found by their dedup key."""

import falcon

from api import alerts, history
from api.incident_rules import RESPONDER_ROLES
from api.operations import operation
from api.resources.common import Resource
from api.resources.incidents import change, set_categories
from api.schemas import ALERT_RESULT, ALERTMANAGER_NOTIFICATION, PAGERDUTY_EVENT

STATUS_OF_ACTION = {"acknowledge": "in_progress", "resolve": "resolved"}


def accepted(resp, incident_id, action, dedup_key):
    resp.status = falcon.HTTP_202
    resp.media = {"incident_id": incident_id, "action": action, "dedup_key": dedup_key}


class Intake(Resource):
    async def _open(self, user, source, dedup_key, fields, category_names=()):
        """The alert's incident, open already (the alert is counted) or created now: its id and
        the action ('updated' or 'created')."""
        fields = {**fields, "assignee_id": None}
        async with self._db.write(one_statement=not category_names) as conn:
            category_ids = []
            if category_names:
                category_ids = await self._queries.find_categories_by_name(conn, names=list(category_names))
            event = history.created({**fields, "status": "open", "category_ids": category_ids})
            row = await self._queries.open_alert_incident(
                conn,
                **fields,
                source=source,
                dedup_key=dedup_key,
                category_ids=category_ids,
                actor_id=user["id"],
                **event,
            )
            if row["created"] and category_ids:
                await set_categories(conn, self._queries, row["id"], category_ids)
        return row["id"], "created" if row["created"] else "updated"

    async def _move(self, user, source, dedup_key, status):
        """The open or in-progress incident of the key moved to `status`: its id and the action
        ('updated', 'resolved', or 'ignored' when the key names no such incident)."""
        async with self._db.write() as conn:
            current = await self._queries.lock_alert_incident(conn, source=source, dedup_key=dedup_key)
            if current is None:
                return None, "ignored"
            await change(conn, self._queries, user, current, {"status": status})
        return current["id"], "resolved" if status == "resolved" else "updated"


class PagerDutyEvents(Intake):
    # APPSEC: PagerDuty senders authenticate with the body's routing_key; it may hold a token
    # when no Authorization header is sent (see AuthMiddleware).
    token_member = "routing_key"

    @operation(
        "Send an alert event (PagerDuty Events API v2)",
        status=202,
        response=ALERT_RESULT,
        body=PAGERDUTY_EVENT,
        roles=RESPONDER_ROLES,
        idempotent=True,
    )
    async def on_post(self, req, resp):
        body, user = req.context.body, req.context.user
        if body["event_action"] == "trigger":
            key = body.get("dedup_key") or alerts.new_dedup_key()
            fields = alerts.pagerduty_incident(body["payload"])
            incident_id, action = await self._open(user, "alerts", key, fields)
        else:
            key = body["dedup_key"]
            status = STATUS_OF_ACTION[body["event_action"]]
            incident_id, action = await self._move(user, "alerts", key, status)
        accepted(resp, incident_id, action, key)


class AlertmanagerNotifications(Intake):
    @operation(
        "Receive an Alertmanager notification (webhook v4)",
        status=202,
        response=ALERT_RESULT,
        body=ALERTMANAGER_NOTIFICATION,
        roles=RESPONDER_ROLES,
        idempotent=True,
    )
    async def on_post(self, req, resp):
        body, user = req.context.body, req.context.user
        key = body["groupKey"]
        if body["status"] == "firing":
            fields = alerts.alertmanager_incident(body)
            names = alerts.alertmanager_categories(body)
            incident_id, action = await self._open(user, "alertmanager", key, fields, names)
        else:
            incident_id, action = await self._move(user, "alertmanager", key, "resolved")
        accepted(resp, incident_id, action, key)
