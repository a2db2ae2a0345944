"""`python -m api diagram`: the live schema as docs/diagram.png (Graphviz) and a Mermaid
erDiagram in docs/architecture.md, both read from PostgreSQL's catalog.

The output depends only on the schema (tables by name, columns in table order), never on
the database's name, so the block can be checked against any migrated database.
"""

import dataclasses
import html
import pathlib
import re
import shutil
import subprocess

from api.cli import PROJECT_ROOT
from api.sql import load_queries

PAGE = PROJECT_ROOT / "docs" / "architecture.md"
PNG = PROJECT_ROOT / "docs" / "diagram.png"
START, END = "<!-- erd:start -->", "<!-- erd:end -->"
DOT_MISSING = "Graphviz's dot is needed to draw the diagram: sudo apt-get install graphviz"


@dataclasses.dataclass(frozen=True)
class Schema:
    tables: dict  # table name -> its columns: {name, type, primary_key, foreign_key}
    foreign_keys: list  # {table, columns, target, target_columns, optional}


def read_schema(conn):
    """Tables by name, columns in table order, foreign keys by table and columns."""
    tables = {}
    queries = load_queries()
    for column in queries.read_catalog_columns(conn):
        tables.setdefault(column.pop("table"), []).append(column)
    foreign_keys = queries.read_catalog_foreign_keys(conn)
    return Schema(
        dict(sorted(tables.items())), sorted(foreign_keys, key=lambda fk: (fk["table"], fk["columns"]))
    )


def keys(column):
    return ", ".join(
        key for key, present in (("PK", column["primary_key"]), ("FK", column["foreign_key"])) if present
    )


def mermaid_type(type_name):
    # NOTE: Mermaid attribute types are single words: "timestamp with time zone" -> timestamp_with_time_zone.
    return re.sub(r"[^\w()\[\]-]+", "_", type_name)


def mermaid(schema):
    targets = references(schema)
    lines = ["erDiagram"]
    for table, columns in schema.tables.items():
        lines.append(f"    {table} {{")
        lines += [f"        {mermaid_attribute(c, targets.get((table, c['name'])))}" for c in columns]
        lines.append("    }")
    for fk in schema.foreign_keys:
        parent = "|o" if fk["optional"] else "||"
        lines.append(f'    {fk["target"]} {parent}--o{{ {fk["table"]} : "{", ".join(fk["columns"])}"')
    return "\n".join(lines) + "\n"


def mermaid_attribute(column, target):
    return " ".join(filter(None, [mermaid_type(column["type"]), column["name"], keys(column), target]))


def references(schema):
    """(table, column) -> the Mermaid comment naming what that foreign key column references."""
    found = {}
    for fk in schema.foreign_keys:
        for column, target in zip(fk["columns"], fk["target_columns"], strict=True):
            found.setdefault((fk["table"], column), []).append(f"{fk['target']}.{target}")
    return {key: '"' + ", ".join(names) + '"' for key, names in found.items()}


def dot(schema):
    lines = [
        "digraph schema {",
        "    graph [rankdir=LR, fontname=Helvetica];",
        "    node [shape=plaintext, fontname=Helvetica];",
        "    edge [fontname=Helvetica, fontsize=10];",
    ]
    lines += [
        f'    "{table}" [label=<{dot_table(table, columns)}>];' for table, columns in schema.tables.items()
    ]
    lines += [
        f'    "{fk["table"]}":"{fk["columns"][0]}" -> "{fk["target"]}":"{fk["target_columns"][0]}"'
        f' [label="{", ".join(fk["columns"])}"{", style=dashed" if fk["optional"] else ""}];'
        for fk in schema.foreign_keys
    ]
    return "\n".join(lines + ["}"]) + "\n"


def dot_table(table, columns):
    rows = "".join(
        f'<TR><TD ALIGN="LEFT" PORT="{c["name"]}">{html.escape(dot_cell(c))}</TD></TR>' for c in columns
    )
    return (
        f'<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4">'
        f'<TR><TD BGCOLOR="lightgrey"><B>{html.escape(table)}</B></TD></TR>{rows}</TABLE>'
    )


def dot_cell(column):
    return " ".join(filter(None, [column["name"], ":", column["type"], keys(column)]))


def write_png(dot_text, path):
    if not shutil.which("dot"):
        raise RuntimeError(DOT_MISSING)
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dot", "-Tpng", "-o", str(path)], input=dot_text, text=True, check=True)


def erd_block(mermaid_text):
    return f"{START}\n```mermaid\n{mermaid_text}```\n{END}"


def current_block(page_text):
    match = re.search(re.escape(START) + ".*?" + re.escape(END), page_text, re.DOTALL)
    if not match:
        raise RuntimeError(f"{PAGE.name} has no {START} ... {END} markers for the diagram")
    return match


def update_page(mermaid_text, path=PAGE):
    text = pathlib.Path(path).read_text()
    match = current_block(text)
    pathlib.Path(path).write_text(text[: match.start()] + erd_block(mermaid_text) + text[match.end() :])
