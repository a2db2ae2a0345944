"""Every error as application/problem+json (RFC 9457), and database errors mapped to HTTP."""

import http
import json
import logging

import falcon
import psycopg
from psycopg import errors as pg

from api import metrics
from api.db import PoolBusy

log = logging.getLogger("api")

RETRY_AFTER_SECONDS = "2"


CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(32), *range(127, 160))} | {ord("\\"): "\\\\"}


def escape_controls(text):
    """`text` from a client, fit for one log line: control characters (and backslashes) escaped."""
    return text.translate(CONTROL_ESCAPES)


# Constraint (or unique index) name -> the request member it is about.
CONSTRAINT_POINTERS = {
    "users_username_key": ("#/username", "is already taken"),
    "users_email_key": ("#/email", "is already taken"),
    "categories_name_key": ("#/name", "is already taken"),
    "incidents_assignee_id_fkey": ("#/assignee_id", "names no user"),
    "incidents_assignee_active": ("#/assignee_id", "names no active user"),
    "incident_categories_category_id_fkey": ("#/category_ids", "names a category that does not exist"),
    # Reopening an alert's incident while a newer one of the same alert is open.
    "incidents_open_dedup_key": ("#/status", "would make a second open incident of its alert (dedup_key)"),
}


class Problem(falcon.HTTPError):
    """An HTTP error with a problem+json body; `errors` lists each bad member or parameter."""

    def __init__(self, status, detail=None, errors=None, headers=None, title=None, **extensions):
        super().__init__(status, description=detail, headers=headers)
        self.errors = errors
        self.problem_title = title
        self.extensions = extensions


class ValidationFailed(Problem):
    def __init__(self, errors, detail="The request body is not valid."):
        super().__init__(falcon.HTTP_422, detail, errors)


class InvalidParameter(Problem):
    def __init__(self, name, detail):
        super().__init__(
            falcon.HTTP_400, f"Query parameter {name!r} {detail}.", [{"parameter": name, "detail": detail}]
        )


def serialize_problem(req, resp, ex):
    status = int(ex.status_code)
    problem = {
        "type": "about:blank",
        "title": getattr(ex, "problem_title", None) or http.HTTPStatus(status).phrase,
        "status": status,
        "detail": ex.description or ex.title,
    }
    if getattr(ex, "errors", None):
        problem["errors"] = ex.errors
    problem.update(getattr(ex, "extensions", {}))
    resp.content_type = "application/problem+json"
    resp.data = json.dumps(problem).encode()  # ASCII-escaped, so any echoed input encodes


def unavailable(detail, **problem):
    """A 503 problem with Retry-After: the client may try again shortly."""
    return Problem(falcon.HTTP_503, detail, headers={"Retry-After": RETRY_AFTER_SECONDS}, **problem)


async def unique_violation(req, resp, ex, params):
    pointer, detail = CONSTRAINT_POINTERS.get(ex.diag.constraint_name, ("#", "conflicts"))
    raise Problem(
        falcon.HTTP_409,
        f"{pointer[2:] or 'The resource'} {detail}.",
        [{"pointer": pointer, "detail": detail}],
    )


async def reference_violation(req, resp, ex, params):
    pointer, detail = CONSTRAINT_POINTERS.get(ex.diag.constraint_name, ("#", "names a missing record"))
    raise ValidationFailed([{"pointer": pointer, "detail": detail}])


async def rejected_value(req, resp, ex, params):
    # NOTE: the JSON Schemas should stop these first; reaching here means a rule is missing.
    log.error(
        "database rejected a value the schema allowed: %s %s: %s",
        req.method,
        escape_controls(req.path),
        ex.diag.message_primary,
    )
    raise ValidationFailed([{"pointer": "#", "detail": "a value is out of range or malformed"}])


async def database_unavailable(req, resp, ex, params):
    metrics.DATABASE_UNAVAILABLE.inc()
    log.warning("database unavailable: %s %s: %s", req.method, escape_controls(req.path), type(ex).__name__)
    raise unavailable("The database is unavailable; retry shortly.")


async def took_too_long(req, resp, ex, params):
    metrics.STATEMENT_TIMEOUTS.inc()
    log.warning("statement timeout: %s %s", req.method, escape_controls(req.path))
    raise unavailable(
        "The request took longer than the database allows a statement; retry shortly, or narrow it.",
        title="Request took too long",
    )


async def collided(req, resp, ex, params):
    log.warning("%s: %s %s", type(ex).__name__, req.method, escape_controls(req.path))
    raise unavailable(
        "The request collided with a concurrent one and was undone as a whole; retry it.",
        title="Concurrent change",
    )


async def overloaded(req, resp, ex, params):
    metrics.POOL_BUSY.inc()
    log.warning("pool busy: %s %s", req.method, escape_controls(req.path))
    raise unavailable(
        "Every database connection stayed busy with other requests; the service is overloaded, retry shortly."
    )


def register(app):
    app.set_error_serializer(serialize_problem)
    app.add_error_handler(pg.UniqueViolation, unique_violation)
    app.add_error_handler(pg.ForeignKeyViolation, reference_violation)
    app.add_error_handler(psycopg.IntegrityError, rejected_value)
    app.add_error_handler(psycopg.DataError, rejected_value)
    app.add_error_handler(psycopg.OperationalError, database_unavailable)
    app.add_error_handler(pg.QueryCanceled, took_too_long)
    # NOTE: a deadlock or serialization failure is an OperationalError, but no outage
    app.add_error_handler((pg.DeadlockDetected, pg.SerializationFailure, pg.TransactionRollback), collided)
    app.add_error_handler(PoolBusy, overloaded)
