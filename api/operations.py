"""`@operation`: each responder declares its contract once, and this both enforces it (roles,
query parameters, body schema, Idempotency-Key) and keeps it for the OpenAPI document."""

import dataclasses
import functools

import falcon

from api import idempotency, params
from api.auth import known_caller, require_role
from api.errors import InvalidParameter
from api.validation import body_reader


@dataclasses.dataclass(frozen=True)
class Operation:
    summary: str
    status: int
    response: dict | None
    query: dict
    required: tuple
    body: dict | None
    optional_body: bool
    roles: tuple
    errors: tuple
    media_type: str
    idempotent: bool
    security: str | None
    description: str | None


def operation(
    summary,
    *,
    status=200,
    response=None,
    query=None,
    required=(),
    body=None,
    optional_body=False,
    roles=(),
    errors=(),
    media_type="application/json",
    idempotent=False,
    security=None,
    description=None,
):
    """Declares and enforces a responder's contract: `roles` (else 403), `query` parameters
    parsed into `req.context.args` (unknown or missing `required` ones 400), `body` validated
    into `req.context.body`, and with `idempotent` an `Idempotency-Key` honoured.
    `errors` names the further statuses it may answer (403 for ownership, 409, 412, 304);
    `security` names the OpenAPI security scheme of a responder that checks a credential of
    its own instead of a user's token (api.openapi.SECURITY_SCHEMES); `description` is the
    OpenAPI operation's, where the summary is not enough."""
    query = query or {}
    read_body = None if body is None else body_reader(body, optional_body)

    def decorate(responder):
        inner = idempotency.idempotent(responder) if idempotent else responder

        @functools.wraps(responder)
        async def checked(resource, req, resp, **route_params):
            if roles:
                require_role(req.context.user, roles)
            try:
                req.context.args = parse_query(req, query, required)
                if read_body is not None:
                    req.context.body = await read_body(req)
            except falcon.HTTPError:
                if req.context.get("token_hash"):  # a bad token is a 401 before any fault of the request
                    await known_caller(req, resource._db, resource._queries)
                raise
            await inner(resource, req, resp, **route_params)

        checked.operation = Operation(
            summary,
            status,
            response,
            query,
            tuple(required),
            body,
            optional_body,
            tuple(roles),
            tuple(errors),
            media_type,
            idempotent,
            security,
            description,
        )
        return checked

    return decorate


def parse_query(req, known, required):
    args = params.parse(req, known)
    for name in required:
        if name not in args:
            raise InvalidParameter(name, "is required")
    return args
