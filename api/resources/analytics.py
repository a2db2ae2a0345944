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
        return await queries.incident_stats_all(conn, **stats_span({}), days=days)
    if not rolled_up(narrowing):
        return await queries.incident_stats(conn, **incident_filters(narrowing), days=days)
    async with snapshot(conn):  # the check and the figures see the same incidents
        if narrowing.keys() <= DATE_FILTERS and await queries.stats_dates_match_all(
            conn, **{**dict.fromkeys(DATE_FILTERS), **narrowing}
        ):
            return await queries.incident_stats_all(conn, **stats_span({}), days=days)
        return await queries.incident_stats_rollup(conn, **stats_span(narrowing), days=days)


ROLLUP_FILTERS = {"status", "severity", "source", "category_id", "created_after", "created_before"}


def rolled_up(filters):
    """Whether incident_stats_rollup takes these filters: those its rollups are keyed by."""
    return filters.keys() - {"assignee_id"} <= ROLLUP_FILTERS and filters.get("assignee_id") is None


def stats_span(filters):
    """incident_stats_rollup's parameters: incident_filters' and how the created_at range splits
    into whole units of the rollups and the incidents read at its ends (see stats_selection)."""
    after, before = filters.get("created_after"), filters.get("created_before")
    days = split(after, before, day_floor, datetime.timedelta(days=1), ("up", "down"))
    months = split(after, before, month_floor, None, ("nearest", "nearest"))
    return {**incident_filters(filters), **span_parameters("day", days), **span_parameters("month", months)}


def split(after, before, floor, step, directions):
    """(any, first, last, [(start, end, sign)]): the units (days or months) from `first` to
    before `last` (None: unbounded; none at all unless `any`) and the created_at ranges to add
    (sign 1) or take away (-1) so that they make [after, before). Each end moves to a unit
    boundary in its direction ("up", "down" or "nearest"); `step` is a unit (None: a month)."""
    first = None if after is None else boundary(after, floor, step, directions[0])
    last = None if before is None else boundary(before, floor, step, directions[1])
    if first is not None and last is not None and first >= last or first is LATEST:
        return False, None, None, [(after, before, 1)]
    ends = []
    if first is not None and first != after:
        ends.append((after, first, 1) if after < first else (first, after, -1))
    if last is not None and last != before:
        ends.append((last, before, 1) if last < before else (before, last, -1))
    return True, first, last, ends


def boundary(moment, floor, step, direction):
    """The unit boundary at or next to `moment` in `direction`; LATEST if it would be past the
    last day a datetime holds (rounding `nearest` then goes down)."""
    below = floor(moment)
    if below == moment or direction == "down":
        return below
    try:
        above = below + step if step else next_month(below)
    except (OverflowError, ValueError):
        return LATEST if direction == "up" else below
    if direction == "up":
        return above
    return below if moment - below <= above - moment else above


LATEST = object()  # rounding up went past datetime.max: no whole unit starts after the moment


def span_parameters(unit, split_range):
    units, first, last, ends = split_range
    ends = ends + [(None, None, 0)] * (2 - len(ends))
    parameters = {
        f"{unit}s_any": units,
        f"{unit}s_from": first and first.date(),
        f"{unit}s_to": last and last.date(),
    }
    for suffix, (start, end, sign) in zip(("", "2"), ends, strict=True):
        parameters |= {f"{unit}_edge{suffix}_from": start, f"{unit}_edge{suffix}_to": end}
        if unit == "month":
            parameters[f"{unit}_edge{suffix}_sign"] = sign
    return parameters


def day_floor(moment):
    return moment.astimezone(datetime.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def month_floor(moment):
    return day_floor(moment).replace(day=1)


def next_month(first_day):
    return first_day.replace(year=first_day.year + first_day.month // 12, month=first_day.month % 12 + 1)


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
