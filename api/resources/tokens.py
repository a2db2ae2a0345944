import asyncio
import datetime

import falcon

from api import params
from api.auth import client_address, new_token, password_matches, throttle_keys, unauthorized
from api.errors import Problem
from api.operations import operation
from api.resources.common import Resource, created, found, id_page
from api.schemas import TOKEN, TOKEN_CREATE, TOKEN_INFO, page_of

WINDOW = datetime.timedelta(minutes=15)
# Failed logins in WINDOW after which an attempt is 429: per username and client address, and
# per client address whatever the username.
THROTTLE = {"pair_max": 10, "address_max": 100, "window": WINDOW}


class Collection(Resource):
    public_methods = {"POST"}

    @operation("Log in: get a bearer token", status=201, response=TOKEN, body=TOKEN_CREATE, errors=[401, 429])
    async def on_post(self, req, resp):
        body = req.context.body
        keys = throttle_keys(body["username"], client_address(req, self._db.config.forwarded_allow_ips))
        attempt_id = await self._count_attempt(keys)
        async with self._db.read() as conn:
            login = await self._queries.get_login(conn, username=body["username"])
        matches = await asyncio.to_thread(
            password_matches, login and login["password_hash"], body["password"]
        )
        if not (matches and login["active"]):
            raise unauthorized("Wrong username or password.")  # the attempt stays counted
        token, token_hash = new_token()
        async with self._db.write() as conn:
            issued = await self._queries.create_token(
                conn, token_hash=token_hash, user_id=login["id"], ttl_days=self._db.config.token_ttl_days
            )
            await self._queries.forget_login_failures(conn, pair_key=keys["pair_key"], attempt_id=attempt_id)
        del login["password_hash"]
        req.context.user = login  # the caller from now on: read-your-writes covers the new token
        created(resp, "/auth/tokens/current", {"token": token, **issued, "user": login})

    async def _count_attempt(self, keys):
        """Counts the attempt as failed before the password is checked (a success takes it back),
        in a transaction of its own, committed before Argon2 runs: so however many arrive at once,
        no more than the limit ever reach Argon2. Or the 429."""
        async with self._db.write() as conn:
            await self._queries.lock_login_address(conn, address_key=keys["address_key"])
            admitted = await self._queries.admit_login(conn, **keys, **THROTTLE)
        if admitted["retry_after"] is not None:
            raise Problem(
                falcon.HTTP_429,
                "Too many failed logins from this address; retry later.",
                headers={"Retry-After": str(admitted["retry_after"])},
            )
        return admitted["attempt_id"]

    @operation("List your live tokens", response=page_of(TOKEN_INFO), query=params.PAGE)
    async def on_get(self, req, resp):
        async with self._db.read() as conn:
            resp.media = await id_page(
                req,
                resp,
                lambda args, after_id, limit: self._queries.list_tokens(
                    conn,
                    user_id=req.context.user["id"],
                    token_hash=req.context.token_hash,
                    after_id=after_id,
                    limit=limit,
                ),
            )


class Item(Resource):
    @operation("Revoke one of your tokens", status=204)
    async def on_delete(self, req, resp, token_id):
        async with self._db.write(one_statement=True) as conn:
            revoked = await self._queries.revoke_token(conn, id=token_id, user_id=req.context.user["id"])
        found(revoked, "token of yours")
        resp.status = falcon.HTTP_204


class Current(Resource):
    @operation("Log out: revoke the token used", status=204)
    async def on_delete(self, req, resp):
        async with self._db.write() as conn:
            await self._queries.delete_token(conn, token_hash=req.context.token_hash)
        resp.status = falcon.HTTP_204
