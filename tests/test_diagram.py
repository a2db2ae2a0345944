"""`python -m api diagram`: every table, column, key of the migrated schema is drawn, and
docs/architecture.md's erDiagram is the one the current migrations produce."""

import os
import re
import shutil

import pytest

from api.cli import diagram
from api.db import connect

CATALOG_COLUMNS = """
    SELECT c.table_name, c.column_name,
           CASE c.data_type WHEN 'USER-DEFINED' THEN c.udt_name
                            WHEN 'ARRAY' THEN substr(c.udt_name, 2) || '[]' ELSE c.data_type END AS type
    FROM information_schema.columns c
    JOIN information_schema.tables t USING (table_schema, table_name)
    WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
      AND c.table_name NOT LIKE '\\_yoyo\\_%' AND c.table_name <> 'yoyo_lock'
"""
CATALOG_KEYS = """
    SELECT k.table_name, k.column_name, t.constraint_type
    FROM information_schema.table_constraints t
    JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name)
    WHERE t.table_schema = 'public' AND t.constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY')
"""
CATALOG_REFERENCES = """
    SELECT k.table_name, k.column_name, u.table_name AS target, u.column_name AS target_column
    FROM information_schema.referential_constraints r
    JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name)
    JOIN information_schema.key_column_usage u
      ON u.constraint_schema = r.unique_constraint_schema AND u.constraint_name = r.unique_constraint_name
     AND u.ordinal_position = k.position_in_unique_constraint
    WHERE k.table_schema = 'public'
"""


@pytest.fixture(scope="module")
def catalog(database_url):
    with connect(database_url) as conn:
        columns = conn.execute(CATALOG_COLUMNS).fetchall()
        keys = conn.execute(CATALOG_KEYS).fetchall()
        references = conn.execute(CATALOG_REFERENCES).fetchall()
        schema = diagram.read_schema(conn)
    return columns, keys, references, schema


def key_markers(keys, table, column):
    kinds = {k["constraint_type"] for k in keys if (k["table_name"], k["column_name"]) == (table, column)}
    return [marker for marker, kind in (("PK", "PRIMARY KEY"), ("FK", "FOREIGN KEY")) if kind in kinds]


def mermaid_entity(text, table):
    return re.search(rf"^    {table} \{{\n(.*?)^    \}}", text, re.MULTILINE | re.DOTALL).group(1)


def test_mermaid_shows_every_table_column_and_key(catalog):
    columns, keys, references, schema = catalog
    text = diagram.mermaid(schema)
    assert {c["table_name"] for c in columns} >= {"users", "incidents", "comments", "categories"}
    assert "_yoyo" not in text and "yoyo_lock" not in text
    for c in columns:
        markers = ", ".join(key_markers(keys, c["table_name"], c["column_name"]))
        type_name = re.sub(r"[^\w()\[\]-]+", "_", c["type"])
        line = f"{type_name} {c['column_name']} {markers}".rstrip()
        assert re.search(
            rf"^        {re.escape(line)}( \"|$)", mermaid_entity(text, c["table_name"]), re.MULTILINE
        ), line
    for r in references:
        assert re.search(
            rf'^    {r["target"]} (\|\||\|o)--o\{{ {r["table_name"]} : "[^"]*\b{r["column_name"]}\b',
            text,
            re.MULTILINE,
        ), r
        assert re.search(rf'{r["column_name"]} [^\n]*FK "[^"]*{r["target"]}\.{r["target_column"]}', text), r


def test_dot_shows_every_table_column_and_key(catalog):
    columns, keys, references, schema = catalog
    text = diagram.dot(schema)
    for c in columns:
        node = re.search(rf'^    "{c["table_name"]}" \[label=<(.*)>\];$', text, re.MULTILINE).group(1)
        markers = ", ".join(key_markers(keys, c["table_name"], c["column_name"]))
        cell = f"{c['column_name']} : {c['type']} {markers}".rstrip()
        assert f'PORT="{c["column_name"]}">{cell}<' in node, cell
    for r in references:
        assert f'"{r["table_name"]}":"{r["column_name"]}" -> "{r["target"]}":"{r["target_column"]}"' in text


def test_architecture_page_holds_the_current_diagram(catalog):
    *_, schema = catalog
    page = diagram.PAGE.read_text()
    assert diagram.current_block(page).group(0) == diagram.erd_block(diagram.mermaid(schema)), (
        "docs/architecture.md's erDiagram is stale: run `make diagram`"
    )


def test_png_is_drawn_with_graphviz(catalog, tmp_path):
    if not shutil.which("dot"):
        if os.environ.get("CI"):
            pytest.fail("Graphviz's dot is missing in CI")
        pytest.skip("Graphviz's dot is missing: sudo apt-get install graphviz")
    *_, schema = catalog
    path = tmp_path / "diagram.png"
    diagram.write_png(diagram.dot(schema), path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_update_page_replaces_only_the_block(tmp_path):
    page = tmp_path / "architecture.md"
    page.write_text(f"# Title\n\n{diagram.START}\nold\n{diagram.END}\n\nmore text\n")
    diagram.update_page("erDiagram\n    users {\n    }\n", page)
    assert page.read_text() == (
        f"# Title\n\n{diagram.START}\n```mermaid\nerDiagram\n    users {{\n    }}\n"
        f"```\n{diagram.END}\n\nmore text\n"
    )
