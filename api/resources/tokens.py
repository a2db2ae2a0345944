import datetime

import falcon

from api.auth import new_token, password_matches, throttle_key, unauthorized
from api.errors import Problem
from api.operations import operation
from api.resources.common import Resource, created
from api.schemas import TOKEN, TOKEN_CREATE

THROTTLE = {"max_failures": 10, "window": datetime.timedelta(minutes=15)}


class Collection(Resource):
    auth_required = False

    @operation("Log in: get a bearer token", status=201, response=TOKEN, body=TOKEN_CREATE, errors=[401, 429])
    async def on_post(self, req, resp):
        body = req.context.body
        username_hash = throttle_key(body["username"])
        async with self._db.read() as conn:
            retry_after = await self._queries.login_retry_after(conn, username_hash=username_hash, **THROTTLE)
            login = await self._queries.get_login(conn, username=body["username"])
        if retry_after:
            raise Problem(
                falcon.HTTP_429,
                "Too many failed logins for this username; retry later.",
                headers={"Retry-After": str(retry_after)},
            )
        matches = password_matches(login and login["password_hash"], body["password"])
        if not (matches and login["active"]):
            async with self._db.write() as conn:
                await self._queries.record_login_failure(conn, username_hash=username_hash, **THROTTLE)
            raise unauthorized("Wrong username or password.")
        token, token_hash = new_token()
        async with self._db.write() as conn:
            await self._queries.create_token(conn, token_hash=token_hash, user_id=login["id"])
            await self._queries.clear_login_failures(conn, username_hash=username_hash)
        del login["password_hash"]
        created(resp, "/auth/tokens/current", {"token": token, "user": login})


class Current(Resource):
    @operation("Log out: revoke the token used", status=204)
    async def on_delete(self, req, resp):
        async with self._db.write() as conn:
            await self._queries.delete_token(conn, token_hash=req.context.token_hash)
        resp.status = falcon.HTTP_204
