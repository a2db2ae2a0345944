"""The OpenAPI 3.1 document, built from each responder's `@operation` declaration and the route
table, so it cannot drift from what the code enforces."""

import re

from falcon.routing import map_http_methods

from api import idempotency
from api.auth import is_public
from api.schemas import EVENT_TYPES, ID, PING_MESSAGE, PROBLEM, event_of
from api.validation import MERGE_PATCH

ERROR_TEXT = {
    304: "Not modified: the ETag in If-None-Match is current",
    400: "Malformed JSON, or an unknown, repeated or invalid query parameter; a request the HTTP "
    "server itself cannot parse (a request target over 64 KiB, broken HTTP) gets the server's "
    "own plain-text 400",
    401: "Missing, unknown or revoked bearer token",
    403: "The caller's role or ownership does not allow this",
    404: "No such resource",
    409: "Conflict: a duplicate, a forbidden transition, records that depend on this one, "
    "or a request with the same Idempotency-Key still in progress",
    410: "Gone: the events after this position were pruned (kept EVENT_RETENTION_DAYS)",
    412: "If-Match is not the current ETag",
    413: "The body is over 1 MiB",
    415: "The body is not application/json",
    422: "The body breaks its schema or names a record that does not exist, "
    "or the Idempotency-Key was used for a different request",
    429: "Too many failed logins from this address (for this username, or for any); "
    "retry after Retry-After seconds",
    503: "The database is unavailable, the request took too long, or it collided with a concurrent one "
    "and was undone (its own title says which); retry after Retry-After seconds",
}


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "A user's token, from POST /auth/tokens"},
    "metrics_token": {
        "type": "http",
        "scheme": "bearer",
        "description": "The METRICS_TOKEN setting of the server; GET /metrics answers 404 while it "
        "is unset, and 401 to anything else, a user's token included",
    },
}


def document(routes):
    """The OpenAPI 3.1 document for `routes` ({template: resource})."""
    paths = {}
    for template, resource in routes.items():
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", template)
        for method, responder in sorted(map_http_methods(resource).items()):
            public = is_public(resource, method)
            declared = getattr(responder, "operation", None)
            if declared is None:
                raise RuntimeError(f"{method} {template} has no @operation")
            paths.setdefault(path, {})[method.lower()] = _describe(declared, method, path, public)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Incidents API",
            "version": "1.0.0",
            "description": "Report, assign, categorize, discuss and resolve incidents.",
        },
        "paths": paths,
        "webhooks": _webhooks(),
        "components": {
            "securitySchemes": SECURITY_SCHEMES,
            "schemas": {"Problem": PROBLEM},
        },
        "security": [{"bearer": []}],
    }


def _describe(declared, method, path, public):
    path_params = re.findall(r"\{(\w+)\}", path)
    described = {
        "summary": declared.summary,
        "operationId": _operation_id(declared.summary),
        "parameters": [{"name": name, "in": "path", "required": True, "schema": ID} for name in path_params]
        + [
            _query_parameter(name, parser, name in declared.required)
            for name, parser in declared.query.items()
        ]
        + ([IDEMPOTENCY_KEY] if declared.idempotent else []),
        "responses": {str(declared.status): _success(declared)},
    }
    if declared.description:
        described["description"] = declared.description
    if declared.body is not None:
        media = {"application/json": {"schema": declared.body}}
        if method == "PATCH":
            media[MERGE_PATCH] = {"schema": declared.body}
        described["requestBody"] = {"required": not declared.optional_body, "content": media}
    if declared.security:
        described["security"] = [{declared.security: []}]
    elif public:
        described["security"] = []
    for code in sorted(_error_statuses(declared, path_params, public)):
        described["responses"][str(code)] = _problem(code)
    return described


def _error_statuses(declared, path_params, public):
    codes = {400, 503, *declared.errors}
    if not public or declared.security:
        codes.add(401)
    if declared.roles:
        codes.add(403)
    if path_params:
        codes.add(404)
    if declared.body is not None:
        codes |= {413, 415, 422}
    if declared.idempotent:
        codes |= {409, 422}
    return codes


IDEMPOTENCY_KEY = {
    "name": idempotency.HEADER,
    "in": "header",
    "required": False,
    "schema": idempotency.KEY_SCHEMA,
    "description": "Makes a retry safe: a replay by the same user within 24 hours gets the stored "
    "response (409 while the first is in progress, 422 for a different request).",
}


def _success(declared):
    if declared.response is None:
        return {"description": "Done; no body"}
    headers = {}
    if declared.idempotent:
        headers["Idempotent-Replayed"] = {
            "schema": {"const": "true"},
            "description": "Present when this is a stored response",
        }
    if declared.status == 201:
        headers["Location"] = {"schema": {"type": "string"}, "description": "URL of the new resource"}
    return {
        "description": {200: "OK", 201: "Created", 202: "Accepted"}[declared.status],
        "headers": headers,
        "content": {declared.media_type: {"schema": declared.response}},
    }


def _problem(code):
    if code == 304:
        return {"description": ERROR_TEXT[304]}
    content = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    if code == 400:
        content["text/plain"] = {"schema": {"const": "Invalid HTTP request received."}}
    return {"description": ERROR_TEXT[code], "content": content}


def _query_parameter(name, parser, required):
    described = {"name": name, "in": "query", "required": required, "schema": parser.schema}
    if parser.schema.get("type") == "array":
        described.update(style="form", explode=False)
    return described


def _operation_id(summary):
    return re.sub(r"[^a-z0-9]+", "_", summary.lower()).strip("_")


SIGNATURE_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "The event's id, the same on every retry: deduplicate by it",
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "Unix seconds when this attempt was signed",
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "Standard Webhooks v1: space-separated `v1,<base64 HMAC-SHA256>` of "
        "`{webhook-id}.{webhook-timestamp}.{body}`, one per secret in use (two for 24 hours after a rotation)",
    },
]


def _webhooks():
    """What the delivery worker POSTs to a subscribed URL, one entry per message type."""
    messages = {t: event_of(t) for t in EVENT_TYPES}
    messages["webhook.ping"] = PING_MESSAGE
    return {
        message_type: {
            "post": {
                "summary": f"A {message_type} message",
                "operationId": "webhook_" + _operation_id(message_type),
                "parameters": SIGNATURE_HEADERS,
                "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
                "responses": {
                    "2XX": {
                        "description": "Received. Any other answer, a redirect included, or none "
                        "within 15 s, is a failure: the message is sent again later"
                    }
                },
            }
        }
        for message_type, schema in messages.items()
    }
