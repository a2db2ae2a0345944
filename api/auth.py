"""Bearer tokens, password hashing, and who may do what."""

import hashlib
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


def throttle_key(username):
    """What failed logins are counted under: no username in clear, any case the same."""
    return hashlib.sha256(username.lower().encode()).digest()


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


class AuthMiddleware:
    """Resolves `Authorization: Bearer <token>` to `req.context.user` for every routed request
    except those whose resource says `auth_required = False`. For the methods a resource lists
    in `authenticates_in_query`, the middleware only checks the header: the responder's own
    query looks the token up too (PERF: one round trip instead of two) and calls `authenticated()`.
    Such a method declares no roles: its caller is known only once its query ran."""

    def __init__(self, db, queries):
        self._db = db
        self._queries = queries

    async def process_resource(self, req, resp, resource, params):
        if resource is None or not getattr(resource, "auth_required", True):
            return
        scheme, _, token = (req.get_header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("Send 'Authorization: Bearer <token>'; get a token from POST /auth/tokens.")
        req.context.token_hash = hash_token(token.strip())
        if req.method in getattr(resource, "authenticates_in_query", ()):
            return
        async with self._db.read() as conn:
            user = await self._queries.get_user_by_token(conn, token_hash=req.context.token_hash)
        req.context.user = caller(user)


def caller(user):
    """The user a token lookup found, or the 401 for a token that names no active user."""
    if user is None:
        raise unauthorized("The token is unknown, revoked, or its user is deactivated.", "invalid_token")
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
