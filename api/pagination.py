"""Keyset pages: opaque cursors, `next_cursor` and the `Link: rel="next"` header."""

import base64
import binascii
import json
import urllib.parse

from api.errors import InvalidParameter
from api.schemas import MAX_ID

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_LENGTH = 512


def encode_cursor(*values):
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def requested(args, cursor_parsers):
    """The page parsed query parameters ask for: (page size, the values its cursor carries,
    checked by `cursor_parsers`, or None for the first page, the other parameters)."""
    args = dict(args)
    limit = args.pop("limit", DEFAULT_LIMIT)
    cursor = args.pop("cursor", None)
    return limit, None if cursor is None else decode_cursor(cursor, cursor_parsers), args


def decode_cursor(cursor, parsers):
    """The values packed in `cursor`, each checked by its parser; a 400 for anything else."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(parsers):
            raise ValueError
        return [parse(value) for parse, value in zip(parsers, values, strict=True)]
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise InvalidParameter("cursor", "is not a cursor given by this list") from None


def positive_id(value):
    if type(value) is not int or not 1 <= value <= MAX_ID:
        raise ValueError("not an id")
    return value


def page(req, resp, rows, limit, cursor_of):
    """The response body for `rows` (fetched with LIMIT limit + 1), and the Link header."""
    items = rows[:limit]
    next_cursor = cursor_of(items[-1]) if len(rows) > limit else None
    if next_cursor:
        query = {**req.params, "cursor": next_cursor}
        url = f"{req.prefix}{req.path}?{urllib.parse.urlencode(query)}"
        resp.append_header("Link", f'<{url}>; rel="next"')
    return {"items": items, "next_cursor": next_cursor}
