"""GET /incidents/search and GET /incidents/stats."""

from api import params
from api.db import snapshot
from api.incident_rules import present
from api.lists import INCIDENT_FILTERS, incident_filters
from api.operations import operation
from api.pagination import encode_cursor, page, positive_id, requested
from api.resources.common import Resource
from api.schemas import SEARCH_ITEM, SEVERITIES, SOURCES, STATS, STATUSES, page_of

MAX_QUERY_LENGTH = 1000
# PERF: a search ranks only its newest matches (after the filters): ranking every match of a
# common word took 3 s on a million incidents. With 500, words in ~3 % of them take ~12 ms;
# with 1,000, ~21 ms.
SEARCH_CANDIDATES = 500
REAL_MIN, REAL_MAX = 1.1754944e-38, 3.4028235e38  # PostgreSQL's real (float4), normalized


def search_text():
    parser = params.text(MAX_QUERY_LENGTH)
    parser.schema = {
        **parser.schema,
        "description": (
            f"Full-text query (websearch syntax). Only the {SEARCH_CANDIDATES} most recent incidents that "
            "match it and the filters are ranked and paged through; narrow the query or use the filters "
            "(e.g. created_before) to reach older ones."
        ),
    }
    return parser


SEARCH_PARAMETERS = {
    **{k: v for k, v in INCIDENT_FILTERS.items() if k != "sort"},
    "query": search_text(),
}
STATS_PARAMETERS = {
    **{k: v for k, v in INCIDENT_FILTERS.items() if k not in params.PAGE and k != "sort"},
    "days": params.integer(1, 3660),
}


class Search(Resource):
    replica_methods = {"GET"}

    @operation("Search incidents", response=page_of(SEARCH_ITEM), query=SEARCH_PARAMETERS, required=["query"])
    async def on_get(self, req, resp):
        limit, after, args = requested(req.context.args, [rank, positive_id])
        after_rank, after_id = after or (None, None)
        async with self._db.read() as conn:
            rows = await self._queries.search_incidents(
                conn,
                **incident_filters(args),
                after_rank=after_rank,
                after_id=after_id,
                limit=limit + 1,
                max_candidates=SEARCH_CANDIDATES,
            )
        body = page(req, resp, rows, limit, lambda row: encode_cursor(row["rank"], row["id"]))
        body["items"] = [present(row, req.context.user) for row in body["items"]]
        resp.media = body


def rank(value):
    """A rank from a cursor: what the search's `real` ranks can be (a float that underflows or
    overflows a real would make PostgreSQL fail the cast)."""
    if type(value) not in (int, float) or not (value == 0 or REAL_MIN <= value <= REAL_MAX):
        raise ValueError("not a rank")
    return value


class Stats(Resource):
    replica_methods = {"GET"}

    @operation("Incident statistics", response=STATS, query=STATS_PARAMETERS)
    async def on_get(self, req, resp):
        async with self._db.read() as conn:
            resp.media = await incident_stats(self._queries, conn, req.context.args)


async def incident_stats(queries, conn, args):
    """The stats document for parsed STATS_PARAMETERS (the bench times this very function)."""
    args = dict(args)
    days = args.pop("days", 30)
    narrowing = narrowing_filters(args)
    if not narrowing:  # PERF: every incident: from the duration histogram, not a pass over them all
        return await queries.incident_stats_all(conn, **incident_filters({}), days=days)
    if narrowing.keys() - DATE_FILTERS:
        return await queries.incident_stats(conn, **incident_filters(narrowing), days=days)
    async with snapshot(conn):  # the check and the figures see the same incidents
        if await queries.stats_dates_match_all(conn, **{**dict.fromkeys(DATE_FILTERS), **narrowing}):
            return await queries.incident_stats_all(conn, **incident_filters({}), days=days)
        return await queries.incident_stats(conn, **incident_filters(narrowing), days=days)


DATE_FILTERS = {"created_after", "created_before"}
EVERY_VALUE = {"status": STATUSES, "severity": SEVERITIES, "source": SOURCES}


def narrowing_filters(filters):
    """The filters that may leave incidents out: a status or severity filter that lists every
    value leaves none out (created_after/created_before may still match every incident)."""
    return {
        name: value
        for name, value in filters.items()
        if name not in EVERY_VALUE or set(value) != set(EVERY_VALUE[name])
    }
