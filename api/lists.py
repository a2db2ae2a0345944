"""Incident lists: their filters, sort keys and keyset pages, for /incidents, a user's and a
category's incidents, and the filters that search, stats and the report share."""

import dataclasses

from api import params
from api.auth import authenticated
from api.incident_rules import present
from api.pagination import encode_cursor, page, positive_id, requested
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


def list_queries(query, filters, table="i", sorts=SORTS, prepare_unfiltered=True):
    """`query` (list_incidents, list_user_incidents or list_category_incidents) for each (sort
    key, first page or not, filtered or not), filled with constant SQL that keys on `table`.
    PERF: an unfiltered list is prepared where its generic plan is sound (planning a user's
    list took 0.9 of its 2.0 ms); a filtered one is planned for its values every time, since
    the generic plans of the catch-all `filters` scan whole tables."""
    return {
        (key, first, filtered): dataclasses.replace(
            query.format(
                filters=filters if filtered else "TRUE",
                after="TRUE" if first else sort.after(table),
                order_by=sort.order_by(table),
            ),
            custom_plan=filtered or not prepare_unfiltered,
        )
        for key, sort in sorts.items()
        for first in (True, False)
        for filtered in (True, False)
    }


def with_caller(page_for_token, page, sort_key):
    """`page` inside the page_for_token fragment, ordered by `sort_key` as before."""
    wrapper = dataclasses.replace(page, text=page_for_token)
    return wrapper.format(page=page.text, order_by=SORTS[sort_key].order_by("page"))


def is_filtered(filters):
    return any(filters[name] not in (None, False) for name in NO_FILTERS)


class IncidentLists:
    """Filtered, sorted, keyset-paginated incident lists: /incidents and its nested forms."""

    def __init__(self, queries):
        filters = queries.fragments["incident_filters"]
        self.variants = {  # by query name, then by (sort key, first page or not, filtered or not)
            "list_incidents": list_queries(queries.list_incidents, filters),
            "list_user_incidents": list_queries(queries.list_user_incidents, filters),
            # NOTE: the category walk's generic plan took 19-31 ms against 1.3-1.6 ms planned for its values
            "list_category_incidents": list_queries(
                queries.list_category_incidents, filters, "c", CREATED_AT_SORTS, prepare_unfiltered=False
            ),
        }
        page_for_token = queries.fragments["page_for_token"]
        self.for_token = {  # the same, each with the caller behind the bearer token
            name: {key: with_caller(page_for_token, page, key[0]) for key, page in pages.items()}
            for name, pages in self.variants.items()
        }

    def query(self, sort_key, first, filters, for_token=False):
        """The list query (with the caller, `for_token`) and its parameters for incident_filters
        parameters (plus user_id and relation on a user's list). A category's incidents by
        created_at walk its links."""
        if "user_id" in filters:
            name = "list_user_incidents"
        elif filters["category_id"] is not None and sort_key in CREATED_AT_SORTS:
            name = "list_category_incidents"
            filters = {**filters, "category_id": None, "in_category": filters["category_id"]}
        else:
            name = "list_incidents"
        queries = self.for_token if for_token else self.variants
        return queries[name][sort_key, first, is_filtered(filters)], filters

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
