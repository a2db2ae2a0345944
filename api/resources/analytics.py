"""GET /incidents/search and GET /incidents/stats."""

import datetime

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
        return await queries.incident_stats_all(conn, **stats_span({}), days=days)
    if not rolled_up(narrowing):
        return await queries.incident_stats(conn, **incident_filters(narrowing), days=days)
    async with snapshot(conn):  # the check and the figures see the same incidents
        if narrowing.keys() <= DATE_FILTERS and await queries.stats_dates_match_all(
            conn, **{**dict.fromkeys(DATE_FILTERS), **narrowing}
        ):
            return await queries.incident_stats_all(conn, **stats_span({}), days=days)
        return await queries.incident_stats_rollup(conn, **stats_span(narrowing), days=days)


ROLLUP_FILTERS = {"status", "severity", "source", "created_after", "created_before"}


def rolled_up(filters):
    """Whether incident_stats_rollup takes these filters: those its rollups are keyed by."""
    return filters.keys() - {"assignee_id"} <= ROLLUP_FILTERS and filters.get("assignee_id") is None


def stats_span(filters):
    """incident_filters' parameters and the created_at range split for the rollups: the whole
    UTC months inside it (months_from to before months_to, None: unbounded) and the partial
    months at its ends, [edge_from, edge_to) and [edge2_from, edge2_to) (None: no such end)."""
    after, before = filters.get("created_after"), filters.get("created_before")
    first = None if after is None else month_ceiling(after)
    last = None if before is None else month_floor(before)
    span = {"months": True, "months_from": first, "months_to": last}
    span |= {"edge_from": None, "edge_to": None, "edge2_from": None, "edge2_to": None}
    if first is not None and last is not None and first >= last:
        span |= {"months": False, "edge_from": after, "edge_to": before}
    else:
        if after is not None and after < first:
            span |= {"edge_from": after, "edge_to": first}
        if before is not None and last < before:
            span |= {"edge2_from": last, "edge2_to": before}
    return {**incident_filters(filters), **span}


def month_floor(moment):
    return moment.astimezone(datetime.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_ceiling(moment):
    floor = month_floor(moment)
    if floor == moment:
        return floor
    return floor.replace(year=floor.year + floor.month // 12, month=floor.month % 12 + 1)


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
