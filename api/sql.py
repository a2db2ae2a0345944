"""Named SQL queries, loaded once from `sql/*.sql`.

Each query starts with a header line `-- name: <name> :<kind>`, optional `--` doc lines,
then its text with psycopg placeholders (`%(name)s`), byte for byte what the server gets.
The app's queries run through api/driver.py, prepared on each connection from their first run
(the command line's and the tests' through psycopg's cursors, from the fifth), so
PostgreSQL may reuse a generic plan; a header ending in ` :custom_plan` runs its query
unprepared, planned for its actual parameters every time (for catch-all filters such as
`(%(x)s IS NULL OR col = %(x)s)`, whose generic plans scan whole tables).
A `:fragment` is no query but SQL that queries (and other fragments) include by writing
`{:its_name}`, replaced when the file is loaded. A slot, `{name}` with a name in SLOTS, is
filled with constant SQL before the query runs (Query.format: the sort order, the keyset
condition, a list's filters and row count). A duplicate name, an unknown kind, an empty
query, or a brace placeholder that is neither a known fragment nor a slot stops start-up.
"""

import dataclasses
import pathlib
import re

import psycopg
from psycopg import sql

from api import driver

SQL_DIR = pathlib.Path(__file__).resolve().parent.parent / "sql"
HEADER = re.compile(r"^-- name: (?P<name>[a-z_][a-z0-9_]*) :(?P<kind>\w+)(?P<custom_plan> :custom_plan)?\s*$")
KINDS = {"one", "many", "scalar", "exec", "execrows", "fragment"}
FRAGMENT = re.compile(r"\{:(\w+)\}")
BRACED = re.compile(r"\{[^{}]*\}")
SLOTS = {"filters", "after", "order_by", "page", "rows"}


class QueryFileError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Query:
    name: str
    kind: str
    text: str
    file: str
    line: int
    custom_plan: bool = False

    def __call__(self, conn, **params):
        """Run on `conn`: a row or None (one), rows (many), a value (scalar), None (exec),
        or the number of rows touched (execrows). On an AsyncConnection (the app's), this is
        a coroutine to await; on a Connection (the command line's, the tests'), it runs now."""
        if isinstance(conn, psycopg.AsyncConnection):
            return self._run_async(conn, params)
        cursor = conn.execute(self.text, params, prepare=False if self.custom_plan else None)
        return self._answer(cursor.fetchall() if cursor.description else [], cursor.rowcount)

    async def _run_async(self, conn, params):
        return self._answer(*await driver.run(conn, self.text, params, prepare=not self.custom_plan))

    def _answer(self, rows, count):
        if self.kind == "many":
            return rows
        if self.kind == "one":
            return rows[0] if rows else None
        if self.kind == "scalar":
            return next(iter(rows[0].values())) if rows else None
        return count if self.kind == "execrows" else None

    def format(self, **slots):
        """This query with its `{slot}`s filled by constant SQL, never input."""
        text = sql.SQL(self.text).format(**{k: sql.SQL(v) for k, v in slots.items()})
        return dataclasses.replace(self, text=text.as_string(None))


class Queries(dict):
    """Queries by name, also reachable as attributes: `queries.get_incident(conn, id=1)`;
    `fragments` holds the fragments' SQL by name, for queries that fill slots with them."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no query named {name!r} in {SQL_DIR}") from None


def load_queries(directory=SQL_DIR):
    queries = Queries()
    for path in sorted(pathlib.Path(directory).glob("*.sql")):
        for query in parse_file(path):
            if query.name in queries:
                first = queries[query.name]
                raise QueryFileError(
                    f"{query.file}:{query.line}: query {query.name!r} "
                    f"already defined at {first.file}:{first.line}"
                )
            queries[query.name] = query
    fragments = {name: queries.pop(name) for name, q in list(queries.items()) if q.kind == "fragment"}
    for name, query in queries.items():
        queries[name] = dataclasses.replace(query, text=expand(query, fragments))
    queries.fragments = {name: expand(fragment, fragments) for name, fragment in fragments.items()}
    return queries


def expand(query, fragments, depth=0):
    """The text of `query` with each `{:fragment}` replaced by its SQL (expanded too); a
    QueryFileError for an unknown fragment, a cycle, or a brace placeholder that is no slot."""
    if depth > len(fragments):
        raise QueryFileError(f"{query.file}:{query.line}: fragments that include each other in a cycle")

    def include(match):
        if match[1] not in fragments:
            raise QueryFileError(f"{query.file}:{query.line}: {query.name!r} includes no fragment {match[0]}")
        return expand(fragments[match[1]], fragments, depth + 1)

    text = FRAGMENT.sub(include, query.text)
    for placeholder in BRACED.findall(text):
        if placeholder[1:-1] not in SLOTS:
            raise QueryFileError(
                f"{query.file}:{query.line}: {query.name!r} has {placeholder}, neither a slot "
                f"({', '.join('{' + s + '}' for s in sorted(SLOTS))}) nor a fragment ({{:name}})"
            )
    return text


def parse_file(path):
    header, body, queries = None, [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.startswith("-- name:"):
            if header:
                queries.append(_make_query(path, header, body))
            header, body = (number, _parse_header(path, number, line)), []
        elif header:
            body.append(line)
        elif line.strip() and not line.startswith("--"):
            raise QueryFileError(f"{path}:{number}: SQL before the first '-- name:' header")
    if header:
        queries.append(_make_query(path, header, body))
    return queries


def _parse_header(path, number, line):
    match = HEADER.match(line)
    if not match or match["kind"] not in KINDS:
        raise QueryFileError(
            f"{path}:{number}: malformed header {line!r}; expected "
            f"'-- name: <snake_case> :<{'|'.join(sorted(KINDS))}>[ :custom_plan]'"
        )
    return match["name"], match["kind"], bool(match["custom_plan"])


def _make_query(path, header, body):
    number, (name, kind, custom_plan) = header
    text = "\n".join(line for line in body if not line.startswith("--")).strip().rstrip(";")
    if not text.strip():
        raise QueryFileError(f"{path}:{number}: query {name!r} has no SQL")
    return Query(name, kind, text, str(path), number, custom_plan)
