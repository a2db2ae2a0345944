from api import params
from api.operations import operation
from api.resources.common import Resource, found, id_page
from api.schemas import HISTORY_ENTRY, page_of


class History(Resource):
    replica_methods = {"GET"}

    @operation("List an incident's history", response=page_of(HISTORY_ENTRY), query=params.PAGE)
    async def on_get(self, req, resp, incident_id):
        async with self._db.read() as conn:
            found(await self._queries.incident_exists(conn, id=incident_id), "incident")
            resp.media = await id_page(
                req,
                resp,
                lambda args, after_id, limit: self._queries.list_history(
                    conn, incident_id=incident_id, after_id=after_id, limit=limit
                ),
            )
