import falcon

from api.errors import ValidationFailed
from api.resources.common import found, id_page


class Follow:
    def __init__(self, db, queries):
        self._db = db
        self._queries = queries

    def on_post(self, req, resp, user_id):
        self._set(req, resp, user_id, self._queries.follow_user)

    def on_delete(self, req, resp, user_id):
        self._set(req, resp, user_id, self._queries.unfollow_user)

    def _set(self, req, resp, user_id, query):
        if user_id == req.context.user["id"]:
            raise ValidationFailed([], "You cannot follow yourself.")
        with self._db.write() as conn:
            found(self._queries.get_user(conn, id=user_id), "user")
            query(conn, follower_id=req.context.user["id"], followee_id=user_id)
        resp.status = falcon.HTTP_204


class Followers:
    """GET /users/{id}/followers or /following, by the query given."""

    def __init__(self, db, queries, list_query):
        self._db = db
        self._queries = queries
        self._list = list_query

    def on_get(self, req, resp, user_id):
        with self._db.read() as conn:
            found(self._queries.get_user(conn, id=user_id), "user")
            resp.media = id_page(req, resp, lambda args, after_id, limit: self._list(
                conn, user_id=user_id, after_id=after_id, limit=limit))
