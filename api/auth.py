"""Bearer tokens, password hashing, and who may do what."""

import hashlib
import ipaddress
import secrets

import argon2
import falcon

from api.errors import Problem

TOKEN_PREFIX = "inc_"
# OWASP's minimum for Argon2id: 19 MiB of memory, 2 iterations, 1 lane.
_hasher = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def new_token():
    """A fresh bearer token (256 random bits) and the hash that is stored for it."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token):
    return hashlib.sha256(token.encode()).digest()


def throttle_keys(username, address):
    """What failed logins are counted under: the username (in any case) with the client address,
    and the address alone; hashed, so no username (or password typed as one) is stored."""
    pair = hashlib.sha256(f"login\0{username.lower()}\0{address}".encode()).digest()
    alone = hashlib.sha256(f"address\0{address}".encode()).digest()
    return {"pair_key": pair, "address_key": alone}


def client_address(req, trusted_proxies):
    """The TCP peer's address, or, when the peer is one of `trusted_proxies` (networks), the
    X-Forwarded-For hop nearest to it that no trusted proxy wrote: each proxy appends the address
    it got the request from, so only hops to the right of the first untrusted one are reliable."""
    peer = req.remote_addr  # falcon.asgi: the ASGI scope's client, whatever the headers say
    if not _is_trusted(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for hop in req.get_header("X-Forwarded-For", default="").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted_proxies):
            return hop
    return hops[0] if hops else peer


def _is_trusted(address, trusted_proxies):
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted_proxies)


def hash_password(password):
    return _hasher.hash(password)


def password_matches(password_hash, password):
    """Always does one full Argon2 check, so an unknown user takes as long as a known one."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except argon2.exceptions.VerificationError:
        return False


def unauthorized(detail, error=None):
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return Problem(falcon.HTTP_401, detail, headers={"WWW-Authenticate": challenge})


def is_public(resource, method):
    """Whether `method` of `resource` needs no token: all of a resource that says
    `auth_required = False`, or the methods it lists in `public_methods`."""
    return not getattr(resource, "auth_required", True) or method in getattr(resource, "public_methods", ())


class AuthMiddleware:
    """Resolves `Authorization: Bearer <token>` to `req.context.user` for every routed request
    but those `is_public`. For the methods a resource lists
    in `authenticates_in_query`, the middleware only checks the header: the responder's own
    query looks the token up too (PERF: one round trip instead of two) and calls `authenticated()`.
    Such a method declares no roles: its caller is known only once its query ran.
    With a replica, the methods a resource lists in `replica_methods` check the token on the
    primary, which also tells how far the caller's last write got, and then read from the
    replica (api/replica.py)."""

    def __init__(self, db, queries):
        self._db = db
        self._queries = queries

    async def process_resource(self, req, resp, resource, params):
        if resource is None or is_public(resource, req.method):
            return
        token = bearer_token(req) or await token_in_body(req, resource)
        if not token:
            raise unauthorized("Send 'Authorization: Bearer <token>'; get a token from POST /auth/tokens.")
        req.context.token_hash = hash_token(token)
        on_replica = self._db.replica is not None and req.method in getattr(resource, "replica_methods", ())
        if not on_replica:
            if req.method not in getattr(resource, "authenticates_in_query", ()):
                await known_caller(req, self._db, self._queries)
            return
        # the token checked on the primary, the rest read from the replica
        async with self._db.read() as conn:
            user = await self._queries.get_reader_by_token(conn, token_hash=req.context.token_hash)
            if user is not None:
                self._db.allow_replica(user.pop("written_up_to"))
        req.context.user = caller(user)


async def known_caller(req, db, queries):
    """`req.context.user`, looked up by the request's token (its hash) unless known already, or
    a 401. Also for a method of `authenticates_in_query` that needs its caller before its query
    after all."""
    if req.context.get("user") is None:
        async with db.read() as conn:
            req.context.user = caller(
                await queries.get_user_by_token(conn, token_hash=req.context.token_hash)
            )
    return req.context.user


def bearer_token(req):
    scheme, _, token = (req.get_header("Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def token_in_body(req, resource):
    """The token a request without an Authorization header sends in its JSON body, as the
    member the resource names in `token_member` (PagerDuty senders' routing_key); else ""."""
    member = getattr(resource, "token_member", None)
    if member is None or req.get_header("Authorization") is not None:
        return ""
    body = await req.get_media(default_when_empty=None)
    token = body.get(member) if isinstance(body, dict) else None
    if not isinstance(token, str) or not token.isascii():  # tokens are ASCII; hashing needs text that encodes
        return ""
    return token.strip()


def caller(user):
    """The user a token lookup found, or the 401 for a token that names no active user."""
    if user is None:
        raise unauthorized(
            "The token is unknown, expired, revoked, or its user is deactivated.", "invalid_token"
        )
    return user


CALLER_COLUMNS = ("id", "username", "role")  # the token_user fragment's columns


def authenticated(req, rows):
    """The rows of a query that authenticated its caller itself: sets `req.context.user` from
    their caller_* columns (a 401 when the token matched no one) and returns them without
    those columns, and without the caller's own row when nothing else matched (its id NULL)."""
    first = rows[0] if rows else None
    req.context.user = caller(first and {name: first[f"caller_{name}"] for name in CALLER_COLUMNS})
    return [_without_caller(row) for row in rows if row["id"] is not None]


def _without_caller(row):
    for name in CALLER_COLUMNS:
        del row[f"caller_{name}"]
    return row


def require_role(user, roles):
    """A 403 problem unless `user` has one of `roles`."""
    if user["role"] not in roles:
        raise Problem(falcon.HTTP_403, f"This needs the role {' or '.join(roles)}.")


def forbid(detail):
    return Problem(falcon.HTTP_403, detail)
