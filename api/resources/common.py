"""Small helpers shared by the resources."""

import falcon

from api.errors import Problem
from api.pagination import encode_cursor, page, positive_id, requested


def found(row, what="resource"):
    """`row`, or a 404 problem when the query found or touched nothing (None, no rows, 0)."""
    if not row:
        raise Problem(falcon.HTTP_404, f"No such {what}.")
    return row


def created(resp, location, media):
    resp.status = falcon.HTTP_201
    resp.location = location
    resp.media = media


def check_if_match(req, etag):
    """A 412 when `If-Match` is sent and names not the current `etag` (strong comparison)."""
    tags = req.if_match
    if tags is None or tags == ["*"]:
        return
    if not any(not tag.is_weak and tag == etag for tag in tags if tag != "*"):
        raise Problem(
            falcon.HTTP_412, "The incident has changed since you read it (If-Match); GET it again and retry."
        )


def etag_matches(req, etag):
    """Whether `If-None-Match` names the current `etag` (weak comparison)."""
    tags = req.if_none_match or []
    return any(tag == "*" or tag == etag for tag in tags)


async def id_page(req, resp, fetch, first=0):
    """A page of rows keyed by id: `fetch(args, after_id, limit)` runs the list query with
    `after_id` = the cursor's id (or `first`) and `limit` = page size + 1."""
    limit, after, args = requested(req.context.args, [positive_id])
    rows = await fetch(args, first if after is None else after[0], limit + 1)
    return page(req, resp, rows, limit, lambda row: encode_cursor(row["id"]))


class Resource:
    """A resource with the database and the named queries its responders run."""

    def __init__(self, db, queries):
        self._db = db
        self._queries = queries
