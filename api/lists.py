"""Incident lists: their filters, sort keys and keyset pages, for /incidents, a user's and a
category's incidents, and the filters that search, stats and the report share."""

import dataclasses
import functools

from api import params
from api.auth import authenticated
from api.incident_rules import present
from api.pagination import MAX_LIMIT, encode_cursor, page, positive_id, requested
from api.schemas import DEDUP_KEY_MAX_LENGTH, SEVERITIES, SOURCES, STATUSES


@dataclasses.dataclass(frozen=True)
class Sort:
    """How one sort key orders a page and continues after a cursor: constant SQL only."""

    column: str
    cast: str
    descending: bool
    parse_value: object

    def order_by(self, table="i"):
        direction = "DESC" if self.descending else "ASC"
        return f"{table}.{self.column} {direction}, {table}.id {direction}"

    def after(self, table="i"):
        op = "<" if self.descending else ">"
        return f"({table}.{self.column}, {table}.id) {op} (%(after_value)s::{self.cast}, %(after_id)s)"


def _sorts(column, cast, parse_value):
    return {
        column: Sort(column, cast, False, parse_value),
        "-" + column: Sort(column, cast, True, parse_value),
    }


SORTS = {
    **_sorts("created_at", "timestamptz", params.timestamp),
    **_sorts("updated_at", "timestamptz", params.timestamp),
    **_sorts("severity", "incident_severity", params.one_of(SEVERITIES)),
}
DEFAULT_SORT = "-created_at"

INCIDENT_FILTERS = {
    **params.PAGE,
    "status": params.list_of(STATUSES),
    "severity": params.list_of(SEVERITIES),
    "reporter_id": params.identifier,
    "assignee_id": params.id_or_none,
    "category_id": params.identifier,
    "created_after": params.timestamp,
    "created_before": params.timestamp,
    "source": params.list_of(SOURCES),
    "dedup_key": params.text(DEDUP_KEY_MAX_LENGTH),
    "sort": params.one_of(list(SORTS)),
}


USER_INCIDENT_FILTERS = {**INCIDENT_FILTERS, "relation": params.one_of(["any", "reporter", "assignee"])}
CATEGORY_INCIDENT_FILTERS = {k: v for k, v in INCIDENT_FILTERS.items() if k != "category_id"}


NO_FILTERS = {
    "status": None,
    "severity": None,
    "reporter_id": None,
    "assignee_id": None,
    "unassigned": False,
    "category_id": None,
    "created_after": None,
    "created_before": None,
    "source": None,
    "dedup_key": None,
}


def incident_filters(args):
    """The parameters of the incident_filters SQL fragment for parsed query parameters."""
    unassigned = "assignee_id" in args and args["assignee_id"] is None
    return {**NO_FILTERS, **args, "unassigned": unassigned}


CREATED_AT_SORTS = {key: sort for key, sort in SORTS.items() if sort.column == "created_at"}


# Filters whose best plan depends on their value: a list given one is planned for its values
# every time. At a million incidents the generic plan of ?source=alertmanager took 700 ms
# against 0.05 ms: the partial index on source <> 'api' cannot serve an unknown value.
PLANNED_PER_VALUE = {"source"}


# The row counts a list query may fetch (a page and one more, to know whether there is
# another), each its own prepared statement. PERF: a constant LIMIT, because PostgreSQL costs
# a generic plan with a LIMIT parameter as if a tenth of the rows were fetched, finds it dearer
# than plans for the values, and plans every call again: 1,320-1,490 µs of its CPU per list
# under load against 500-640 µs. A page between two counts fetches the larger, drops the rest.
PAGE_ROWS = (11, 21, 51, 101, MAX_LIMIT + 1)


# Filters given a list of values that test a single value by equality (their filter_one_*
# fragments) on a list not narrowed to one user: PostgreSQL 15 reads no index in order for
# `= ANY(...)`, and the triage list (one status, one severity, newest first) has an index to
# read in order. A user's list reads that user's index in order and tests status on each row:
# with an equality, the generic plan guessed the busiest reporter's 9,904 incidents at 100,
# fetched and sorted them all (24 ms against 1.3 ms).
ONE_VALUE_FILTERS = {"status", "severity"}


def given_filters(filters, one_values):
    """The names of the filters set in incident_filters parameters, in NO_FILTERS' order, each
    as its fragment's name after `filter_` (`one_values`: filter_one_* for a single value)."""
    return tuple(
        f"one_{name}" if one_values and name in ONE_VALUE_FILTERS and len(filters[name]) == 1 else name
        for name in NO_FILTERS
        if filters[name] not in (None, False)
    )


class IncidentLists:
    """Filtered, sorted, keyset-paginated incident lists: /incidents and its nested forms.
    PERF: a list's query tests only the filters it was given (their filter_* fragments), so
    that it can be prepared and keep a generic plan (the catch-all incident_filters' generic
    plans scan whole tables): parsed and planned on every call, a filtered list took
    1,480-1,750 µs of PostgreSQL's CPU under load, prepared 500-640 µs."""

    def __init__(self, queries):
        self.queries = queries
        self.page_for_token = queries.fragments["page_for_token"]
        self.variant = functools.lru_cache(maxsize=4096)(self._variant)

    def _variant(self, name, sort_key, first, given, rows, for_token):
        """The query `name` for a sort key, first page or not, the names of the filters given,
        the rows to fetch, and with the caller behind the bearer token or not: constant SQL only."""
        sort = SORTS[sort_key]
        table = "c" if name == "list_category_incidents" else "i"
        conditions = " AND ".join(self.queries.fragments["filter_" + f] for f in given)
        query = self.queries[name].format(
            filters=conditions or "TRUE",
            after="TRUE" if first else sort.after(table),
            order_by=sort.order_by(table),
            rows=str(rows),
        )
        query = dataclasses.replace(
            query, custom_plan=query.custom_plan or not PLANNED_PER_VALUE.isdisjoint(given)
        )
        if for_token:
            wrapper = dataclasses.replace(query, text=self.page_for_token)
            query = wrapper.format(page=query.text, order_by=sort.order_by("page"))
        return query

    def query(self, sort_key, first, filters, for_token=False):
        """The list query (with the caller, `for_token`) and its parameters for incident_filters
        parameters (plus user_id and relation on a user's list, and `limit`, the rows wanted).
        A category's incidents by created_at walk its links."""
        if "user_id" in filters:
            name = "list_user_incidents"
        elif filters["category_id"] is not None and sort_key in CREATED_AT_SORTS:
            name = "list_category_incidents"
            filters = {**filters, "category_id": None, "in_category": filters["category_id"]}
        else:
            name = "list_incidents"
        rows = next(rows for rows in PAGE_ROWS if rows >= filters["limit"])
        one_values = (
            name == "list_incidents" and filters["reporter_id"] is None and filters["assignee_id"] is None
        )
        given = given_filters(filters, one_values)
        return self.variant(name, sort_key, first, given, rows, for_token), filters

    async def respond(self, conn, req, resp, **fixed):
        """The page for the parsed query parameters, within the `fixed` filters of the route,
        and the caller (`req.context.user`) found by the same query."""
        sort_key = req.context.args.get("sort", DEFAULT_SORT)
        sort = SORTS[sort_key]
        limit, after, args = requested(
            req.context.args, [params.one_of([sort_key]), sort.parse_value, positive_id]
        )
        args.pop("sort", None)
        _, after_value, after_id = after or (None, None, None)
        query, filters = self.query(
            sort_key,
            after is None,
            {
                **incident_filters({**args, **fixed}),
                "after_value": after_value,
                "after_id": after_id,
                "limit": limit + 1,
            },
            for_token=True,
        )
        rows = authenticated(req, await query(conn, **filters, token_hash=req.context.token_hash))
        body = page(req, resp, rows, limit, lambda row: encode_cursor(sort_key, row[sort.column], row["id"]))
        body["items"] = [present(row, req.context.user) for row in body["items"]]
        return body
