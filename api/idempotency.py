"""`Idempotency-Key` on every POST but login: a replay by the same user within 24 hours gets the
stored response. The response is stored in the transaction of the write it describes, so a
request is either wholly done and remembered, or not done at all."""

import functools
import hashlib
import json
import re

import falcon

from api.auth import known_caller
from api.errors import Problem

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
VISIBLE_ASCII = r"[\x21-\x7e]+"
SECRET_MEMBERS = {"password", "current_password", "routing_key"}  # routing_key: a token (POST /alerts)
KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": f"^{VISIBLE_ASCII}$"}


def idempotent(responder):
    """Wraps a POST responder of a resource with `_db` and `_queries`."""

    @functools.wraps(responder)
    async def respond(resource, req, resp, **params):
        key = req.get_header(HEADER)
        if key is None:
            return await responder(resource, req, resp, **params)
        check_key(key)
        user = await known_caller(req, resource._db, resource._queries)
        digest = fingerprint(req)
        scope = {"user_id": user["id"], "key": key}
        queries = resource._queries
        async with resource._db.write() as conn:
            if not await queries.lock_idempotency_key(conn, **scope):
                raise Problem(falcon.HTTP_409, f"A request with this {HEADER} is still in progress.")
            stored = await queries.get_idempotent_response(conn, **scope)
            if stored is not None:
                return replay(resp, stored, digest)
            await responder(resource, req, resp, **params)
            await queries.save_idempotent_response(
                conn,
                **scope,
                fingerprint=digest,
                status=resp.status_code,
                body=await resp.render_body() or b"",
                location=resp.get_header("Location"),
                etag=resp.get_header("ETag"),
            )

    return respond


def check_key(key):
    if len(key) > MAX_KEY_LENGTH or not re.fullmatch(VISIBLE_ASCII, key):
        raise Problem(falcon.HTTP_400, f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters.")


def fingerprint(req):
    """What makes a request the same: method, path and body (parsed, so spacing does not count),
    but no password (nothing derived from one may be stored) nor token: a request that differs
    only in one is the same request (its replay gets the stored response)."""
    body = getattr(req.context, "body", None)
    if isinstance(body, dict):
        body = {name: value for name, value in body.items() if name not in SECRET_MEMBERS}
    body = json.dumps(body, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(f"{req.method} {req.path}\n{body}".encode()).digest()


def replay(resp, stored, digest):
    if bytes(stored["fingerprint"]) != digest:
        raise Problem(
            falcon.HTTP_422,
            f"This {HEADER} was used for a different request; use a new key for a new request.",
        )
    resp.status = falcon.code_to_http_status(stored["status"])
    if stored["body"]:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = bytes(stored["body"])
    for name in ("Location", "ETag"):
        if stored[name.lower()] is not None:
            resp.set_header(name, stored[name.lower()])
    resp.set_header("Idempotent-Replayed", "true")
