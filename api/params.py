"""Query parameters: only known names, each given once and parsed, else a 400 problem."""

import datetime
import re

from api import pagination
from api.errors import InvalidParameter
from api.schemas import MAX_ID, ROLES

MAX_QUERY_STRING = 4096  # bytes as sent, percent-encoded
RFC_3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,6})?([Zz]|[+-]\d\d:\d\d)", re.ASCII)


def with_schema(schema):
    """Attach the parameter's JSON Schema to its parser, for the OpenAPI document."""

    def attach(parser):
        parser.schema = schema
        return parser

    return attach


def parse(req, parsers):
    """{name: parsed value} for the query parameters present; `parsers` lists the known ones."""
    if len(req.query_string) > MAX_QUERY_STRING:
        longest = max(req.params, key=lambda name: len(str(req.params[name])), default="")
        raise InvalidParameter(longest, f"makes the query string longer than {MAX_QUERY_STRING} bytes")
    unknown = sorted(set(req.params) - set(parsers))
    if unknown:
        raise InvalidParameter(unknown[0], "is not a parameter of this resource")
    values = {}
    for name, raw in req.params.items():
        if isinstance(raw, list):
            raise InvalidParameter(name, "must be given at most once")
        try:
            values[name] = parsers[name](raw)
        except ValueError as ex:
            raise InvalidParameter(name, str(ex)) from None
    return values


def integer(low, high):
    @with_schema({"type": "integer", "minimum": low, "maximum": high})
    def parse_integer(raw):
        if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
            raise ValueError(f"must be an integer from {low} to {high}")
        return int(raw)

    return parse_integer


identifier = integer(1, MAX_ID)
limit = integer(1, pagination.MAX_LIMIT)


def one_of(choices):
    @with_schema({"enum": list(choices)})
    def parse_choice(raw):
        if raw not in choices:
            raise ValueError("must be one of: " + ", ".join(choices))
        return raw

    return parse_choice


def list_of(choices):
    @with_schema({"type": "array", "items": {"enum": list(choices)}})
    def parse_list(raw):
        values = raw.split(",")
        if not all(v in choices for v in values):
            raise ValueError("must be a comma-separated list of: " + ", ".join(choices))
        return sorted(set(values), key=choices.index)

    return parse_list


@with_schema({"type": "boolean"})
def boolean(raw):
    if raw not in ("true", "false"):
        raise ValueError("must be true or false")
    return raw == "true"


@with_schema({"type": "string", "format": "date-time"})
def timestamp(raw):
    # NOTE: fromisoformat alone takes any character between date and time, NUL included.
    try:
        value = datetime.datetime.fromisoformat(raw.upper()) if RFC_3339.fullmatch(raw) else None
    except ValueError:
        value = None
    if value is None:
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2026-11-24T00:00:00Z")
    return value


def text(max_length):
    @with_schema({"type": "string", "minLength": 1, "maxLength": max_length})
    def parse_text(raw):
        if not raw.strip() or len(raw) > max_length or "\x00" in raw:
            raise ValueError(f"must be non-blank text of at most {max_length} characters")
        return raw

    return parse_text


@with_schema({"type": "string", "maxLength": pagination.MAX_CURSOR_LENGTH})
def cursor(raw):
    return raw  # decoded by the resource, which knows the cursor's shape


@with_schema({"oneOf": [{"type": "integer", "minimum": 1, "maximum": MAX_ID}, {"const": "none"}]})
def id_or_none(raw):
    return None if raw == "none" else identifier(raw)


PAGE = {"limit": limit, "cursor": cursor}
USER_FILTERS = {**PAGE, "role": one_of(ROLES), "active": boolean}
