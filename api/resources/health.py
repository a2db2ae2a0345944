import falcon
import psycopg

from api.errors import RETRY_AFTER_SECONDS, Problem
from api.openapi import operation
from api.schemas import HEALTH


class Health:
    auth_required = False

    def __init__(self, db, queries):
        self._db = db
        self._queries = queries

    @operation("Check liveness and the database", response=HEALTH)
    def on_get(self, req, resp):
        try:
            with self._db.read() as conn:
                self._queries.ping(conn)
        except psycopg.OperationalError:
            raise Problem(falcon.HTTP_503, "The database is unreachable; retry shortly.",
                          headers={"Retry-After": RETRY_AFTER_SECONDS},
                          database="unreachable") from None
        resp.media = {"status": "ok", "database": "ok"}
