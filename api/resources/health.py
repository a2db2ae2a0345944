import falcon
import psycopg

from api.errors import RETRY_AFTER_SECONDS, Problem
from api.operations import operation
from api.resources.common import Resource
from api.schemas import HEALTH


class Health(Resource):
    auth_required = False

    @operation("Check liveness and the database", response=HEALTH)
    async def on_get(self, req, resp):
        try:
            async with self._db.read() as conn:
                await self._queries.ping(conn)
        except psycopg.OperationalError:
            raise Problem(
                falcon.HTTP_503,
                "The database is unreachable; retry shortly.",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
                database="unreachable",
            ) from None
        resp.media = {"status": "ok", "database": "ok"}
