import falcon

from api import params
from api.operations import operation
from api.resources.common import Resource, found, id_page
from api.schemas import NOTIFICATION, page_of

FILTERS = {**params.PAGE, "unread": params.boolean}


class Collection(Resource):
    @operation("List my notifications", response=page_of(NOTIFICATION), query=FILTERS)
    async def on_get(self, req, resp):
        async with self._db.read() as conn:
            resp.media = await id_page(
                req,
                resp,
                lambda args, before_id, limit: self._queries.list_notifications(
                    conn,
                    user_id=req.context.user["id"],
                    unread=args.get("unread", False),
                    before_id=before_id,
                    limit=limit,
                ),
                first=None,
            )


class Read(Resource):
    @operation("Mark a notification read", status=204, idempotent=True)
    async def on_post(self, req, resp, notification_id):
        async with self._db.write() as conn:
            marked = await self._queries.mark_notification_read(
                conn, id=notification_id, user_id=req.context.user["id"]
            )
        found(marked, "notification")
        resp.status = falcon.HTTP_204
