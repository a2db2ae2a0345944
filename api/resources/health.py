"""GET /health (liveness: the process answers) and GET /ready (readiness: the database answers
and the worker is not draining)."""

import asyncio

import psycopg

from api.errors import unavailable
from api.operations import operation
from api.resources.common import Resource
from api.schemas import HEALTH, READY

READY_TIMEOUT_SECONDS = 0.5


class Health:
    auth_required = False

    @operation("Check liveness", response=HEALTH)
    async def on_get(self, req, resp):
        resp.media = {"status": "ok"}


class Ready(Resource):
    auth_required = False

    def __init__(self, db, queries, server):
        super().__init__(db, queries)
        self._server = server

    @operation("Check readiness: the database answers and the worker is not draining", response=READY)
    async def on_get(self, req, resp):
        if self._server.draining:
            raise unavailable("This worker is shutting down.", draining=True)
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS), self._db.read() as conn:
                await self._queries.ping(conn)
        except (psycopg.OperationalError, TimeoutError):
            raise unavailable("The database is unreachable; retry shortly.", database="unreachable") from None
        resp.media = {"status": "ok", "database": "ok"}
