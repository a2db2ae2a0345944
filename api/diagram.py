"""`python -m api diagram`: the live schema as docs/diagram.png (Graphviz) and a Mermaid
erDiagram in README.md, both read from PostgreSQL's catalog.

The output depends only on the schema (tables by name, columns in table order), never on
the database's name, so the README block can be checked against any migrated database.
"""
import dataclasses
import html
import pathlib
import re
import shutil
import subprocess

from api.pgcluster import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
PNG = PROJECT_ROOT / "docs" / "diagram.png"
START, END = "<!-- erd:start -->", "<!-- erd:end -->"
DOT_MISSING = "Graphviz's dot is needed to draw the diagram: sudo apt-get install graphviz"

APP_TABLES = """
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND c.relname NOT LIKE '\\_yoyo\\_%' AND c.relname <> 'yoyo_lock'
"""
COLUMNS = f"""
    SELECT c.relname AS table, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
           coalesce(a.attnum = ANY(pk.conkey), false) AS primary_key,
           EXISTS (SELECT FROM pg_constraint fk WHERE fk.conrelid = c.oid AND fk.contype = 'f'
                   AND a.attnum = ANY(fk.conkey)) AS foreign_key
    FROM pg_class c
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
    WHERE c.oid IN ({APP_TABLES})
    ORDER BY a.attnum
"""
FOREIGN_KEYS = f"""
    SELECT src.relname AS table, dst.relname AS target,
           array(SELECT col.attname FROM unnest(fk.conkey) WITH ORDINALITY k(attnum, i)
                 JOIN pg_attribute col ON col.attrelid = fk.conrelid AND col.attnum = k.attnum
                 ORDER BY k.i) AS columns,
           array(SELECT col.attname FROM unnest(fk.confkey) WITH ORDINALITY k(attnum, i)
                 JOIN pg_attribute col ON col.attrelid = fk.confrelid AND col.attnum = k.attnum
                 ORDER BY k.i) AS target_columns,
           EXISTS (SELECT FROM pg_attribute col WHERE col.attrelid = fk.conrelid
                   AND col.attnum = ANY(fk.conkey) AND NOT col.attnotnull) AS optional
    FROM pg_constraint fk
    JOIN pg_class src ON src.oid = fk.conrelid
    JOIN pg_class dst ON dst.oid = fk.confrelid
    WHERE fk.contype = 'f' AND fk.conrelid IN ({APP_TABLES})
"""


@dataclasses.dataclass(frozen=True)
class Schema:
    tables: dict        # table name -> its columns: {name, type, primary_key, foreign_key}
    foreign_keys: list  # {table, columns, target, target_columns, optional}


def read_schema(conn):
    """Tables by name, columns in table order, foreign keys by table and columns."""
    tables = {}
    for column in conn.execute(COLUMNS).fetchall():
        tables.setdefault(column.pop("table"), []).append(column)
    foreign_keys = conn.execute(FOREIGN_KEYS).fetchall()
    return Schema(dict(sorted(tables.items())),
                  sorted(foreign_keys, key=lambda fk: (fk["table"], fk["columns"])))


def keys(column):
    return ", ".join(key for key, present in (("PK", column["primary_key"]),
                                              ("FK", column["foreign_key"])) if present)


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
        for column, target in zip(fk["columns"], fk["target_columns"]):
            found.setdefault((fk["table"], column), []).append(f'{fk["target"]}.{target}')
    return {key: '"' + ", ".join(names) + '"' for key, names in found.items()}


def dot(schema):
    lines = ["digraph schema {", "    graph [rankdir=LR, fontname=Helvetica];",
             "    node [shape=plaintext, fontname=Helvetica];",
             "    edge [fontname=Helvetica, fontsize=10];"]
    lines += [f'    "{table}" [label=<{dot_table(table, columns)}>];'
              for table, columns in schema.tables.items()]
    lines += [f'    "{fk["table"]}":"{fk["columns"][0]}" -> "{fk["target"]}":"{fk["target_columns"][0]}"'
              f' [label="{", ".join(fk["columns"])}"{", style=dashed" if fk["optional"] else ""}];'
              for fk in schema.foreign_keys]
    return "\n".join(lines + ["}"]) + "\n"


def dot_table(table, columns):
    rows = "".join(f'<TR><TD ALIGN="LEFT" PORT="{c["name"]}">{html.escape(dot_cell(c))}</TD></TR>'
                   for c in columns)
    return (f'<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4">'
            f'<TR><TD BGCOLOR="lightgrey"><B>{html.escape(table)}</B></TD></TR>{rows}</TABLE>')


def dot_cell(column):
    return " ".join(filter(None, [column["name"], ":", column["type"], keys(column)]))


def write_png(dot_text, path):
    if not shutil.which("dot"):
        raise RuntimeError(DOT_MISSING)
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dot", "-Tpng", "-o", str(path)], input=dot_text, text=True, check=True)


def readme_block(mermaid_text):
    return f"{START}\n```mermaid\n{mermaid_text}```\n{END}"


def current_block(readme_text):
    match = re.search(re.escape(START) + ".*?" + re.escape(END), readme_text, re.DOTALL)
    if not match:
        raise RuntimeError(f"README.md has no {START} ... {END} markers for the diagram")
    return match


def update_readme(mermaid_text, path=README):
    text = pathlib.Path(path).read_text()
    match = current_block(text)
    pathlib.Path(path).write_text(text[:match.start()] + readme_block(mermaid_text) + text[match.end():])
