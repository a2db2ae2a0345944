import falcon

from api import params
from api.auth import require_role
from api.resources.common import created, found, id_page
from api.schemas import CATEGORY_CREATE, CATEGORY_PATCH
from api.validation import validate_body

NESTED_INCIDENT_FILTERS = {k: v for k, v in params.INCIDENT_FILTERS.items() if k != "category_id"}


class Collection:
    def __init__(self, db, queries):
        self._db = db
        self._queries = queries

    def on_get(self, req, resp):
        with self._db.read() as conn:
            resp.media = id_page(req, resp, lambda args, after_id, limit: self._queries.list_categories(
                conn, after_id=after_id, limit=limit))

    @falcon.before(require_role("admin"))
    @falcon.before(validate_body(CATEGORY_CREATE))
    def on_post(self, req, resp):
        with self._db.write() as conn:
            category = self._queries.create_category(conn, name=req.context.body["name"])
        created(resp, f"/categories/{category['id']}", category)


class Item:
    def __init__(self, db, queries):
        self._db = db
        self._queries = queries

    def on_get(self, req, resp, category_id):
        with self._db.read() as conn:
            resp.media = found(self._queries.get_category(conn, id=category_id), "category")

    @falcon.before(require_role("admin"))
    @falcon.before(validate_body(CATEGORY_PATCH))
    def on_patch(self, req, resp, category_id):
        with self._db.write() as conn:
            resp.media = found(self._queries.update_category(
                conn, id=category_id, name=req.context.body.get("name")), "category")

    @falcon.before(require_role("admin"))
    def on_delete(self, req, resp, category_id):
        with self._db.write() as conn:
            found(self._queries.delete_category(conn, id=category_id) or None, "category")
        resp.status = falcon.HTTP_204


class Incidents:
    def __init__(self, db, queries, lists):
        self._db = db
        self._queries = queries
        self._lists = lists

    def on_get(self, req, resp, category_id):
        with self._db.read() as conn:
            found(self._queries.get_category(conn, id=category_id), "category")
            resp.media = self._lists.respond(conn, req, resp, NESTED_INCIDENT_FILTERS,
                                             category_id=category_id)
