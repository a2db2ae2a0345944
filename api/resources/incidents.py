import dataclasses

import falcon

from api import history, params
from api.auth import caller_in, forbid, without_caller
from api.errors import ValidationFailed
from api.incident_rules import RESPONDER_ROLES, changes, check_may_change, check_transition, present
from api.openapi import operation
from api.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor, page, positive_id
from api.resources.common import Resource, check_if_match, created, etag_matches, found
from api.schemas import INCIDENT, INCIDENT_CREATE, INCIDENT_PATCH, INCIDENT_REPLACE, RESOLVE, page_of

INCIDENT_PAGE = page_of(INCIDENT)

NO_FILTERS = {
    "status": None,
    "severity": None,
    "reporter_id": None,
    "assignee_id": None,
    "unassigned": False,
    "category_id": None,
    "created_after": None,
    "created_before": None,
}


def incident_filters(args):
    """The parameters of the incident_filters SQL fragment for parsed query parameters."""
    unassigned = "assignee_id" in args and args["assignee_id"] is None
    return {**NO_FILTERS, **args, "unassigned": unassigned}


CREATED_AT_SORTS = {key: sort for key, sort in params.SORTS.items() if sort.column == "created_at"}


def list_queries(query, filters, table="i", sorts=params.SORTS, prepare_unfiltered=True):
    """`query` (list_incidents, list_user_incidents or list_category_incidents) for each (sort
    key, first page or not, filtered or not), filled with constant SQL that keys on `table`.
    PERF: an unfiltered list is prepared where its generic plan is sound (planning a user's
    list took 0.9 of its 2.0 ms); a filtered one is planned for its values every time, since
    the generic plans of the catch-all `filters` scan whole tables."""
    return {
        (key, first, filtered): dataclasses.replace(
            query.format(
                filters=filters if filtered else "TRUE",
                after="TRUE" if first else sort.after(table),
                order_by=sort.order_by(table),
            ),
            custom_plan=filtered or not prepare_unfiltered,
        )
        for key, sort in sorts.items()
        for first in (True, False)
        for filtered in (True, False)
    }


def with_caller(page_for_token, page, sort_key):
    """`page` inside the page_for_token fragment, ordered by `sort_key` as before."""
    wrapper = dataclasses.replace(page, text=page_for_token)
    return wrapper.format(page=page.text, order_by=params.SORTS[sort_key].order_by("page"))


def is_filtered(filters):
    return any(filters[name] not in (None, False) for name in NO_FILTERS)


class IncidentLists:
    """Filtered, sorted, keyset-paginated incident lists: /incidents and its nested forms."""

    def __init__(self, queries):
        filters = queries.fragments["incident_filters"]
        self.variants = {  # by query name, then by (sort key, first page or not, filtered or not)
            "list_incidents": list_queries(queries.list_incidents, filters),
            "list_user_incidents": list_queries(queries.list_user_incidents, filters),
            # NOTE: the category walk's generic plan took 19-31 ms against 1.3-1.6 ms planned for its values
            "list_category_incidents": list_queries(
                queries.list_category_incidents, filters, "c", CREATED_AT_SORTS, prepare_unfiltered=False
            ),
        }
        page_for_token = queries.fragments["page_for_token"]
        self.for_token = {  # the same, each with the caller behind the bearer token
            name: {key: with_caller(page_for_token, page, key[0]) for key, page in pages.items()}
            for name, pages in self.variants.items()
        }

    def query(self, sort_key, first, filters, for_token=False):
        """The list query (with the caller, `for_token`) and its parameters for incident_filters
        parameters (plus user_id and relation on a user's list). A category's incidents by
        created_at walk its links."""
        if "user_id" in filters:
            name = "list_user_incidents"
        elif filters["category_id"] is not None and sort_key in CREATED_AT_SORTS:
            name = "list_category_incidents"
            filters = {**filters, "category_id": None, "in_category": filters["category_id"]}
        else:
            name = "list_incidents"
        queries = self.for_token if for_token else self.variants
        return queries[name][sort_key, first, is_filtered(filters)], filters

    async def respond(self, conn, req, resp, **fixed):
        """The page for the parsed query parameters, within the `fixed` filters of the route,
        and the caller (`req.context.user`) found by the same query."""
        args = dict(req.context.args)
        sort_key = args.pop("sort", params.DEFAULT_SORT)
        sort = params.SORTS[sort_key]
        limit = args.pop("limit", DEFAULT_LIMIT)
        cursor = args.pop("cursor", None)
        after = {"after_value": None, "after_id": None}
        if cursor is not None:
            _, after["after_value"], after["after_id"] = decode_cursor(
                cursor, [params.one_of([sort_key]), sort.parse_value, positive_id]
            )
        query, filters = self.query(
            sort_key,
            cursor is None,
            {**incident_filters({**args, **fixed}), **after, "limit": limit + 1},
            for_token=True,
        )
        rows = await query(conn, **filters, token_hash=req.context.token_hash)
        user = req.context.user = caller_in(rows[0] if rows else None)
        rows = [without_caller(row) for row in rows if row["id"] is not None]
        body = page(req, resp, rows, limit, lambda row: encode_cursor(sort_key, row[sort.column], row["id"]))
        body["items"] = [present(row, user) for row in body["items"]]
        return body


async def set_categories(conn, queries, incident_id, category_ids):
    missing = await queries.find_missing_categories(conn, ids=category_ids)
    if missing:
        raise ValidationFailed(
            [
                {"pointer": f"#/category_ids/{row['position']}", "detail": "names no category"}
                for row in missing
            ]
        )
    await queries.set_incident_categories(conn, id=incident_id, category_ids=category_ids)


def respond_with(resp, incident, user):
    resp.etag = str(incident["version"])
    resp.media = present(incident, user)


class Collection(Resource):
    authenticates_in_query = {"GET"}

    def __init__(self, db, queries, lists):
        super().__init__(db, queries)
        self._lists = lists

    @operation("List incidents", response=INCIDENT_PAGE, query=params.INCIDENT_FILTERS)
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
        body, user = req.context.body, req.context.user
        if body.get("assignee_id") is not None and user["role"] not in RESPONDER_ROLES:
            raise forbid("Only responders and admins assign incidents.")
        fields = {
            "title": body["title"],
            "description": body.get("description", ""),
            "severity": body.get("severity", "medium"),
            "assignee_id": body.get("assignee_id"),
        }
        category_ids = sorted(body.get("category_ids", []))
        event = history.created({**fields, "status": "open", "category_ids": category_ids})
        async with self._db.write(transaction=bool(category_ids)) as conn:
            incident = await self._queries.create_incident(conn, **fields, actor_id=user["id"], **event)
            if category_ids:
                await set_categories(conn, self._queries, incident["id"], category_ids)
                incident = await self._queries.get_incident(conn, id=incident["id"])
        created(resp, f"/incidents/{incident['id']}", None)
        respond_with(resp, incident, user)


class Item(Resource):
    authenticates_in_query = {"GET"}

    @operation("Get an incident", response=INCIDENT, errors=[304])
    async def on_get(self, req, resp, incident_id):
        async with self._db.read() as conn:
            row = await self._queries.get_incident_for_token(
                conn, id=incident_id, token_hash=req.context.token_hash
            )
        req.context.user = caller_in(row)
        incident = found(without_caller(row) if row["id"] is not None else None, "incident")
        if etag_matches(req, incident["version"]):
            resp.status = falcon.HTTP_304
            resp.etag = str(incident["version"])
            return
        respond_with(resp, incident, req.context.user)

    @operation("Replace an incident", response=INCIDENT, body=INCIDENT_REPLACE, errors=[403, 409, 412])
    async def on_put(self, req, resp, incident_id):
        await self._update(req, resp, incident_id)

    @operation("Update an incident", response=INCIDENT, body=INCIDENT_PATCH, errors=[403, 409, 412])
    async def on_patch(self, req, resp, incident_id):
        await self._update(req, resp, incident_id)

    @operation("Delete an incident", status=204, roles=["admin"])
    async def on_delete(self, req, resp, incident_id):
        async with self._db.write() as conn:
            found(await self._queries.delete_incident(conn, id=incident_id) or None, "incident")
        resp.status = falcon.HTTP_204

    async def _update(self, req, resp, incident_id):
        async with self._db.write() as conn:
            current = found(await self._queries.lock_incident(conn, id=incident_id), "incident")
            check_if_match(req, current["version"])
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
    """Applies `body` to the locked incident `current` as `user`, with its history entry and
    notifications; returns the incident as it now is."""
    changed = changes(current, body)
    check_may_change(user, current, changed)
    if "status" in changed:
        check_transition(user, current, changed["status"])
    if "category_ids" in changed:
        await set_categories(conn, queries, current["id"], changed["category_ids"])
    if changed:
        await queries.update_incident(conn, **{**current, **changed})
        await history.record_changed(conn, queries, user["id"], current, changed)
    return await queries.get_incident(conn, id=current["id"])
