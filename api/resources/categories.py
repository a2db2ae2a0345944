import falcon

from api import params
from api.lists import CATEGORY_INCIDENT_FILTERS
from api.operations import operation
from api.resources.common import Resource, created, found, id_page
from api.schemas import CATEGORY, CATEGORY_CREATE, CATEGORY_PATCH, INCIDENT_PAGE, page_of


class Collection(Resource):
    @operation("List categories", response=page_of(CATEGORY), query=params.PAGE)
    async def on_get(self, req, resp):
        async with self._db.read() as conn:
            resp.media = await id_page(
                req,
                resp,
                lambda args, after_id, limit: self._queries.list_categories(
                    conn, after_id=after_id, limit=limit
                ),
            )

    @operation(
        "Create a category",
        status=201,
        response=CATEGORY,
        body=CATEGORY_CREATE,
        roles=["admin"],
        errors=[409],
        idempotent=True,
    )
    async def on_post(self, req, resp):
        async with self._db.write() as conn:
            category = await self._queries.create_category(conn, name=req.context.body["name"])
        created(resp, f"/categories/{category['id']}", category)


class Item(Resource):
    @operation("Get a category", response=CATEGORY)
    async def on_get(self, req, resp, category_id):
        async with self._db.read() as conn:
            resp.media = found(await self._queries.get_category(conn, id=category_id), "category")

    @operation("Rename a category", response=CATEGORY, body=CATEGORY_PATCH, roles=["admin"], errors=[409])
    async def on_patch(self, req, resp, category_id):
        async with self._db.write() as conn:
            resp.media = found(
                await self._queries.update_category(conn, id=category_id, name=req.context.body.get("name")),
                "category",
            )

    @operation("Delete a category", status=204, roles=["admin"])
    async def on_delete(self, req, resp, category_id):
        async with self._db.write() as conn:
            found(await self._queries.delete_category(conn, id=category_id), "category")
        resp.status = falcon.HTTP_204


class Incidents(Resource):
    replica_methods = {"GET"}
    authenticates_in_query = {"GET"}

    def __init__(self, db, queries, lists):
        super().__init__(db, queries)
        self._lists = lists

    @operation("List a category's incidents", response=INCIDENT_PAGE, query=CATEGORY_INCIDENT_FILTERS)
    async def on_get(self, req, resp, category_id):
        async with self._db.read() as conn:
            page = await self._lists.respond(conn, req, resp, category_id=category_id)
            if not page["items"]:  # PERF: a category with incidents exists; only an empty page asks
                found(await self._queries.get_category(conn, id=category_id), "category")
        resp.media = page
