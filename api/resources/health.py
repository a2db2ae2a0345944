from api.openapi import operation
from api.schemas import HEALTH


class Health:
    auth_required = False

    def __init__(self, db, queries):
        self._db = db
        self._queries = queries

    @operation("Check liveness and the database", response=HEALTH)
    def on_get(self, req, resp):
        with self._db.read() as conn:
            self._queries.ping(conn)
        resp.media = {"status": "ok", "database": "ok"}
