import asyncio

import falcon
from psycopg.errors import ForeignKeyViolation

from api import params
from api.auth import forbid, hash_password, password_matches
from api.errors import Problem, ValidationFailed
from api.lists import USER_INCIDENT_FILTERS
from api.operations import operation
from api.resources.common import Resource, created, found, id_page
from api.schemas import INCIDENT_PAGE, USER, USER_CREATE, USER_PATCH, USER_REPLACE, page_of

SELF_EDITABLE = {"email", "password", "current_password"}


def check_may_edit(caller, current, body):
    changed = {name for name, value in body.items() if name not in current or value != current[name]}
    if caller["role"] == "admin":
        if caller["id"] == current["id"] and changed & {"role", "active"}:
            raise forbid("Nobody may change their own role or deactivate themselves.")
        return
    if caller["id"] != current["id"]:
        raise forbid("Only admins edit other users.")
    if changed - SELF_EDITABLE:
        raise forbid("You may change only your own email and password.")


async def check_current_password(caller, user, body):
    """Changing one's own password needs the current one (unless there is none yet: an admin
    made on the command line sets a first one); `current_password` serves nothing else."""
    own_password_change = caller["id"] == user["id"] and "password" in body
    if not own_password_change:
        if "current_password" in body:
            raise ValidationFailed(
                [{"pointer": "#/current_password", "detail": "is only for changing your own password"}]
            )
        return
    if user["password_hash"] is None:
        return
    if "current_password" not in body:
        raise ValidationFailed(
            [{"pointer": "#/current_password", "detail": "is required to change your own password"}]
        )
    if not await asyncio.to_thread(password_matches, user["password_hash"], body["current_password"]):
        raise forbid("current_password is not your password.")


def may_unmake_admin(body):
    return body.get("role", "admin") != "admin" or body.get("active") is False


def check_keeps_an_admin(user_id, active_admins):
    if active_admins == [user_id]:
        raise Problem(
            falcon.HTTP_409,
            "This is the last active admin: make another user an admin before demoting, "
            "deactivating or deleting this one.",
        )


async def password_hash_of(body):
    # NOTE: Argon2 (40-130 ms) runs in a thread, so that the worker's event loop goes on
    # serving other requests meanwhile.
    return await asyncio.to_thread(hash_password, body["password"]) if "password" in body else None


class Collection(Resource):
    @operation("List users", response=page_of(USER), query=params.USER_FILTERS)
    async def on_get(self, req, resp):
        async with self._db.read() as conn:
            resp.media = await id_page(
                req,
                resp,
                lambda args, after_id, limit: self._queries.list_users(
                    conn, role=args.get("role"), active=args.get("active"), after_id=after_id, limit=limit
                ),
            )

    @operation(
        "Create a user",
        status=201,
        response=USER,
        body=USER_CREATE,
        roles=["admin"],
        errors=[409],
        idempotent=True,
    )
    async def on_post(self, req, resp):
        body = req.context.body
        password_hash = await password_hash_of(body)
        async with self._db.write() as conn:
            user = await self._queries.create_user(
                conn,
                username=body["username"],
                email=body["email"],
                role=body.get("role", "reporter"),
                active=body.get("active", True),
                password_hash=password_hash,
            )
        created(resp, f"/users/{user['id']}", user)


class Item(Resource):
    @operation("Get a user", response=USER)
    async def on_get(self, req, resp, user_id):
        async with self._db.read() as conn:
            resp.media = found(await self._queries.get_user(conn, id=user_id), "user")

    @operation("Replace a user", response=USER, body=USER_REPLACE, errors=[403, 409])
    async def on_put(self, req, resp, user_id):
        await self._update(req, resp, user_id)

    @operation("Update a user", response=USER, body=USER_PATCH, errors=[403, 409])
    async def on_patch(self, req, resp, user_id):
        await self._update(req, resp, user_id)

    @operation("Delete a user", status=204, roles=["admin"], errors=[409])
    async def on_delete(self, req, resp, user_id):
        if user_id == req.context.user["id"]:
            raise forbid("You cannot delete your own account.")
        try:
            async with self._db.write() as conn:
                check_keeps_an_admin(user_id, await self._queries.lock_active_admins(conn))
                await self._queries.unassign_all(conn, user_id=user_id, actor_id=req.context.user["id"])
                found(await self._queries.delete_user(conn, id=user_id), "user")
        except ForeignKeyViolation:
            raise Problem(
                falcon.HTTP_409,
                "This user reported incidents, wrote comments or changed incidents; deactivate them instead.",
            ) from None
        resp.status = falcon.HTTP_204

    async def _update(self, req, resp, user_id):
        body, caller = req.context.body, req.context.user
        # NOTE: whatever can refuse the request is checked before the slow Argon2 hash and
        # without a lock; what the lock protects is checked again under it.
        async with self._db.read() as conn:
            user = found(await self._queries.get_user_with_password(conn, id=user_id), "user")
        check_may_edit(caller, user, body)
        await check_current_password(caller, user, body)
        password_hash = await password_hash_of(body)
        async with self._db.write() as conn:
            # Active admins are locked before the user (always in this order, so no deadlock).
            admins = await self._queries.lock_active_admins(conn) if may_unmake_admin(body) else None
            current = found(await self._queries.lock_user(conn, id=user_id), "user")
            check_may_edit(caller, current, body)
            if admins is not None:
                check_keeps_an_admin(user_id, admins)
            resp.media = await self._queries.update_user(
                conn,
                **{**current, **body},
                password_hash=password_hash,
                keep_token_hash=req.context.token_hash,
            )


class Incidents(Resource):
    replica_methods = {"GET"}
    authenticates_in_query = {"GET"}

    def __init__(self, db, queries, lists):
        super().__init__(db, queries)
        self._lists = lists

    @operation("List a user's incidents", response=INCIDENT_PAGE, query=USER_INCIDENT_FILTERS)
    async def on_get(self, req, resp, user_id):
        async with self._db.read() as conn:
            page = await self._lists.respond(
                conn, req, resp, user_id=user_id, relation=req.context.args.get("relation", "any")
            )
            if not page["items"]:  # PERF: a user with incidents exists; only an empty page asks
                found(await self._queries.get_user(conn, id=user_id), "user")
        resp.media = page
