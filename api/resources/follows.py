import falcon

from api import params
from api.errors import ValidationFailed
from api.operations import operation
from api.resources.common import Resource, found, id_page
from api.schemas import USER, page_of


class Follow(Resource):
    @operation("Follow a user", status=204, errors=[422], idempotent=True)
    async def on_post(self, req, resp, user_id):
        await self._set(req, resp, user_id, self._queries.follow_user)

    @operation("Unfollow a user", status=204, errors=[422])
    async def on_delete(self, req, resp, user_id):
        await self._set(req, resp, user_id, self._queries.unfollow_user)

    async def _set(self, req, resp, user_id, query):
        if user_id == req.context.user["id"]:
            raise ValidationFailed([], "You cannot follow yourself.")
        async with self._db.write() as conn:
            found(await self._queries.get_user(conn, id=user_id), "user")
            await query(conn, follower_id=req.context.user["id"], followee_id=user_id)
        resp.status = falcon.HTTP_204


async def users_page(db, req, resp, user_id, get_user, list_users):
    async with db.read() as conn:
        found(await get_user(conn, id=user_id), "user")
        return await id_page(
            req,
            resp,
            lambda args, after_id, limit: list_users(conn, user_id=user_id, after_id=after_id, limit=limit),
        )


class Followers(Resource):
    @operation("List a user's followers", response=page_of(USER), query=params.PAGE)
    async def on_get(self, req, resp, user_id):
        resp.media = await users_page(
            self._db, req, resp, user_id, self._queries.get_user, self._queries.list_followers
        )


class Following(Resource):
    @operation("List whom a user follows", response=page_of(USER), query=params.PAGE)
    async def on_get(self, req, resp, user_id):
        resp.media = await users_page(
            self._db, req, resp, user_id, self._queries.get_user, self._queries.list_following
        )
