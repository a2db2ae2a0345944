import falcon

from api import history
from api.auth import authenticated, forbid, known_caller
from api.errors import ValidationFailed
from api.incident_rules import (
    RESPONDER_ROLES,
    changes,
    check_may_change,
    check_transition,
    etag_of,
    present,
)
from api.lists import INCIDENT_FILTERS
from api.operations import operation
from api.resources.common import Resource, check_if_match, created, etag_matches, found
from api.schemas import INCIDENT, INCIDENT_CREATE, INCIDENT_PAGE, INCIDENT_PATCH, INCIDENT_REPLACE, RESOLVE


async def set_categories(conn, queries, incident_id, category_ids, status="open"):
    """Links the incident (whose `status` is that) to exactly these categories."""
    missing = await queries.find_missing_categories(conn, ids=category_ids)
    if missing:
        raise ValidationFailed(
            [
                {"pointer": f"#/category_ids/{row['position']}", "detail": "names no category"}
                for row in missing
            ]
        )
    if status in ("resolved", "closed"):  # see lock_category_rollups
        await queries.lock_category_rollups(conn, id=incident_id, category_ids=category_ids)
    await queries.set_incident_categories(conn, id=incident_id, category_ids=category_ids)


def respond_with(resp, incident, user):
    resp.etag = etag_of(incident)
    resp.media = present(incident, user)


class Collection(Resource):
    replica_methods = {"GET"}
    authenticates_in_query = {"GET", "POST"}  # POST: without categories or Idempotency-Key

    def __init__(self, db, queries, lists):
        super().__init__(db, queries)
        self._lists = lists

    @operation("List incidents", response=INCIDENT_PAGE, query=INCIDENT_FILTERS)
    async def on_get(self, req, resp):
        async with self._db.read() as conn:
            resp.media = await self._lists.respond(conn, req, resp)

    @operation(
        "Report an incident",
        status=201,
        response=INCIDENT,
        body=INCIDENT_CREATE,
        errors=[403],
        idempotent=True,
    )
    async def on_post(self, req, resp):
        body = req.context.body
        fields = {
            "title": body["title"],
            "description": body.get("description", ""),
            "severity": body.get("severity", "medium"),
            "assignee_id": body.get("assignee_id"),
        }
        category_ids = sorted(body.get("category_ids", []))
        event = history.created({**fields, "status": "open", "category_ids": category_ids})
        parameters = {**fields, "source": "api", "dedup_key": None, "category_ids": category_ids, **event}
        if req.context.get("user") is None and not category_ids:
            incident = await self._create_for_token(req, parameters)
        else:
            incident = await self._create(req, parameters)
        created(resp, f"/incidents/{incident['id']}", None)
        respond_with(resp, incident, req.context.user)

    async def _create_for_token(self, req, parameters):
        """The new incident, its caller found by the same statement (authenticates_in_query)."""
        async with self._db.write(one_statement=True) as conn:
            row = await self._queries.create_incident_for_token(
                conn,
                **parameters,
                token_hash=req.context.token_hash,
                assigning_roles=list(RESPONDER_ROLES),
                actor_id=None,
            )
        incidents = authenticated(req, [row] if row else [])
        if not incidents:
            raise may_not_assign()
        return incidents[0]

    async def _create(self, req, parameters):
        user = await known_caller(req, self._db, self._queries)
        if parameters["assignee_id"] is not None and user["role"] not in RESPONDER_ROLES:
            raise may_not_assign()
        category_ids = parameters["category_ids"]
        create = self._queries.create_categorized_incident if category_ids else self._queries.create_incident
        async with self._db.write(one_statement=not category_ids) as conn:
            incident = await create(conn, **parameters, actor_id=user["id"])
            if category_ids:
                await set_categories(conn, self._queries, incident["id"], category_ids)
                incident = await self._queries.get_incident(conn, id=incident["id"])
        return incident


class Item(Resource):
    authenticates_in_query = {"GET"}

    @operation("Get an incident", response=INCIDENT, errors=[304])
    async def on_get(self, req, resp, incident_id):
        async with self._db.read() as conn:
            row = await self._queries.get_incident_for_token(
                conn, id=incident_id, token_hash=req.context.token_hash
            )
        incident = found(authenticated(req, [row] if row else []), "incident")[0]
        if etag_matches(req, etag_of(incident)):
            resp.status = falcon.HTTP_304
            resp.etag = etag_of(incident)
            return
        respond_with(resp, incident, req.context.user)

    @operation("Replace an incident", response=INCIDENT, body=INCIDENT_REPLACE, errors=[403, 409, 412])
    async def on_put(self, req, resp, incident_id):
        await self._update(req, resp, incident_id)

    @operation("Update an incident", response=INCIDENT, body=INCIDENT_PATCH, errors=[403, 409, 412])
    async def on_patch(self, req, resp, incident_id):
        await self._update(req, resp, incident_id)

    @operation("Delete an incident", status=204, roles=["admin"], errors=[412])
    async def on_delete(self, req, resp, incident_id):
        async with self._db.write() as conn:
            current = found(await self._queries.lock_incident(conn, id=incident_id), "incident")
            check_if_match(req, etag_of(current))
            await self._queries.delete_incident(conn, id=incident_id, actor_id=req.context.user["id"])
        resp.status = falcon.HTTP_204

    async def _update(self, req, resp, incident_id):
        async with self._db.write() as conn:
            current = found(await self._queries.lock_incident(conn, id=incident_id), "incident")
            check_if_match(req, etag_of(current))
            incident = await change(conn, self._queries, req.context.user, current, req.context.body)
        respond_with(resp, incident, req.context.user)


class Resolve(Resource):
    @operation(
        "Resolve an incident",
        response=INCIDENT,
        body=RESOLVE,
        optional_body=True,
        roles=RESPONDER_ROLES,
        errors=[409],
        idempotent=True,
    )
    async def on_post(self, req, resp, incident_id):
        async with self._db.write() as conn:
            current = found(await self._queries.lock_incident(conn, id=incident_id), "incident")
            if current["status"] == "resolved":
                incident = await self._queries.get_incident(conn, id=incident_id)
            else:
                body = {"status": "resolved", **req.context.body}
                incident = await change(conn, self._queries, req.context.user, current, body)
        respond_with(resp, incident, req.context.user)


async def change(conn, queries, user, current, body):
    """Applies `body` to the locked incident `current` as `user`, with its history entry,
    notifications and feed event; returns the incident as it now is."""
    changed = changes(current, body)
    check_may_change(user, current, changed)
    if "status" in changed:
        check_transition(user, current, changed["status"])
    if not changed:
        return await queries.get_incident(conn, id=current["id"])
    if "category_ids" in changed:
        await set_categories(conn, queries, current["id"], changed["category_ids"], current["status"])
    await queries.update_incident(conn, **{**current, **changed})
    return await history.record_changed(conn, queries, user["id"], current, changed)


def may_not_assign():
    return forbid("Only responders and admins assign incidents.")
