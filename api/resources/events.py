"""The change feed, GET /events: every committed change as an event, read by position; a
reader never finds a new event at or below a position it has seen (see the change_feed
migration). The events are written with each change's history entry (sql/history.sql)."""

import urllib.parse

import falcon

from api import params
from api.errors import Problem
from api.operations import operation
from api.resources.common import Resource
from api.schemas import EVENT_PAGE, EVENT_TYPES, MAX_ID

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
FILTERS = {
    "after": params.integer(0, MAX_ID),
    "limit": params.integer(1, MAX_LIMIT),
    "types": params.list_of(EVENT_TYPES),
    "incident_id": params.identifier,
}


def present(row):
    return {
        "id": f"evt_{row['position']}",
        "position": row["position"],
        "type": row["type"],
        "occurred_at": row["occurred_at"],
        "actor_id": row["actor_id"],
        "incident_id": row["incident_id"],
        "incident_version": row["incident_version"],
        "data": row["data"],
    }


class Feed(Resource):
    replica_methods = {"GET"}

    @operation("Read the change feed", response=EVENT_PAGE, query=FILTERS, errors=[410])
    async def on_get(self, req, resp):
        args = req.context.args
        limit = args.get("limit", DEFAULT_LIMIT)
        async with self._db.read() as conn:
            rows = await self._queries.read_feed(
                conn,
                after=args.get("after"),
                types=args.get("types"),
                incident_id=args.get("incident_id"),
                limit=limit + 1,
            )
        pruned_through = rows[0]["pruned_through"]
        after = args.get("after", pruned_through)
        if after < pruned_through:
            raise Problem(
                falcon.HTTP_410,
                f"The events after position {after} up to {pruned_through} were pruned (events are "
                "kept for a limited time); read the feed without 'after' to go on from the oldest "
                "one kept.",
                title="Events pruned",
            )
        events = [present(row) for row in rows if row["position"] is not None]
        items = events[:limit]
        next_cursor = str(items[-1]["position"] if items else after)
        if len(events) > limit:
            query = urllib.parse.urlencode({**req.params, "after": next_cursor})
            resp.append_header("Link", f'<{req.prefix}{req.path}?{query}>; rel="next"')
        resp.media = {"items": items, "next_cursor": next_cursor}
