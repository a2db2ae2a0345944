import datetime

from api import params
from api.operations import operation
from api.pagination import encode_cursor, page, positive_id, requested
from api.resources.common import Resource, created, found
from api.schemas import COMMENT, COMMENT_CREATE, page_of

BEFORE_ALL = (datetime.datetime.min.replace(tzinfo=datetime.UTC), 0)


class Collection(Resource):
    replica_methods = {"GET"}

    @operation("List an incident's comments", response=page_of(COMMENT), query=params.PAGE)
    async def on_get(self, req, resp, incident_id):
        limit, after, _ = requested(req.context.args, [params.timestamp, positive_id])
        after_created_at, after_id = after or BEFORE_ALL
        async with self._db.read() as conn:
            found(await self._queries.incident_exists(conn, id=incident_id), "incident")
            rows = await self._queries.list_comments(
                conn,
                incident_id=incident_id,
                after_created_at=after_created_at,
                after_id=after_id,
                limit=limit + 1,
            )
        resp.media = page(
            req, resp, rows, limit, lambda row: encode_cursor(row["created_at"].isoformat(), row["id"])
        )

    @operation("Comment on an incident", status=201, response=COMMENT, body=COMMENT_CREATE, idempotent=True)
    async def on_post(self, req, resp, incident_id):
        async with self._db.write(one_statement=True) as conn:
            comment = await self._queries.create_comment(
                conn,
                incident_id=incident_id,
                author_id=req.context.user["id"],
                content=req.context.body["content"],
            )
        found(comment, "incident")
        created(resp, f"/incidents/{incident_id}/comments/{comment['id']}", comment)


class Item(Resource):
    @operation("Get a comment", response=COMMENT)
    async def on_get(self, req, resp, incident_id, comment_id):
        async with self._db.read() as conn:
            resp.media = found(
                await self._queries.get_comment(conn, id=comment_id, incident_id=incident_id), "comment"
            )
