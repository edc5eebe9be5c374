"""Writing the API's JSON into the mirror's tables: field mapping and the bulk upsert.

The hot path of a full sync, kept apart from the logic that decides what to fetch (sheets/sync.py).
"""

from __future__ import annotations

import orjson
import psycopg
from django.db import connection
from django.utils.dateparse import parse_datetime

from sheets.models import Column, Row

# Rows per INSERT: 6 parameters each stays under SQLite's 32,766 and PostgreSQL's 65,535.
UPSERT_BATCH = 1000


def column_fields(col: dict) -> dict:
    return {
        "index": int(col["index"]),
        "title": col.get("title") or "",
        "type": col.get("type") or "",
        "primary": bool(col.get("primary")),
        "options": list(col.get("options") or []),
        "system_column_type": col.get("systemColumnType") or "",
        "validation": bool(col.get("validation")),
        "hidden": bool(col.get("hidden")),
        "locked": bool(col.get("locked")),
        "width": int(col["width"]) if col.get("width") else None,
        "description": col.get("description") or "",
    }


_COLUMN_FIELDS = [f.name for f in Column._meta.concrete_fields if f.name not in ("id", "sheet")]
# What makes two column lists "the same structure" (width or description do not matter).
_STRUCTURE = ("index", "title", "type", "primary", "options")


def structure(columns: dict[int, dict]) -> dict[int, tuple]:
    return {pk: tuple(str(f[k]) for k in _STRUCTURE) for pk, f in columns.items()}


_CELL_KEYS = frozenset(("value", "displayValue", "formula"))


def row_fields(row: dict) -> dict:
    """The mirror's fields for one row of the API's JSON (whose cell dicts it takes over).

    Runs for every row of a full sync, so the common cell (nothing but value, displayValue or
    formula besides its columnId) is kept as it came rather than copied.
    """
    cells = {}
    for cell in row.get("cells") or ():
        column_id = cell.pop("columnId")
        if not cell:  # an empty cell
            continue
        if cell.keys() <= _CELL_KEYS:
            cells[str(column_id)] = cell
        else:  # hyperlinks, formats, images …: not mirrored
            compact = {k: cell[k] for k in _CELL_KEYS if cell.get(k) is not None}
            if compact:
                cells[str(column_id)] = compact
    modified = row.get("modifiedAt")
    parent = row.get("parentId")
    return {
        "row_number": int(row["rowNumber"]),
        "parent_id": int(parent) if parent else None,
        "modified_at": parse_datetime(modified) if modified else None,
        "cells": cells,
    }


def rows_upsert(sheet_id: int, rows: dict[int, dict]) -> None:
    """Insert or update rows in one statement per batch.

    Plain SQL because this is the hot path of a full sync: the ORM's bulk_create(
    update_conflicts=True) spends ~75 µs per row preparing values and encoding JSON, more than
    the database spends storing it. The statement (INSERT … ON CONFLICT DO UPDATE) is the same
    on PostgreSQL and SQLite.
    """
    if not rows:
        return
    ops = connection.ops
    table = ops.quote_name(Row._meta.db_table)
    columns = "id, sheet_id, row_number, parent_id, modified_at, cells"
    # NULL-safe comparison (SQLite before 3.39 lacks IS DISTINCT FROM).
    differs = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    tail = (
        " ON CONFLICT (id) DO UPDATE SET sheet_id = excluded.sheet_id, "
        "row_number = excluded.row_number, parent_id = excluded.parent_id, "
        "modified_at = excluded.modified_at, cells = excluded.cells WHERE "
        # An unchanged row is left alone: no write, no dead tuple on PostgreSQL.
        f"{table}.row_number <> excluded.row_number OR {table}.cells <> excluded.cells OR "
        f"{table}.sheet_id <> excluded.sheet_id OR "
        f"{table}.parent_id {differs} excluded.parent_id OR "
        f"{table}.modified_at {differs} excluded.modified_at"
    )
    items = list(rows.items())
    with connection.cursor() as cursor:
        for start in range(0, len(items), UPSERT_BATCH):
            batch = items[start : start + UPSERT_BATCH]
            ids = [pk for pk, _ in batch]
            numbers = [f["row_number"] for _, f in batch]
            parents = [f["parent_id"] for _, f in batch]
            moments = [ops.adapt_datetimefield_value(f["modified_at"]) for _, f in batch]
            cells = [orjson.dumps(f["cells"]).decode() for _, f in batch]
            if connection.vendor == "postgresql":
                # Six array parameters whatever the batch size, sent in binary on a cursor that
                # binds on the server: Django's client-side binding quotes every JSON text with
                # a regex, five times slower than the whole insert.
                with psycopg.Cursor(connection.connection) as raw:
                    raw.execute(
                        f"INSERT INTO {table} ({columns}) SELECT i, %b, n, p, m, c::jsonb "  # noqa: S608
                        "FROM unnest(%b::bigint[], %b::integer[], %b::bigint[], "
                        "%b::timestamptz[], %b::text[]) AS u(i, n, p, m, c)" + tail,
                        [sheet_id, ids, numbers, parents, moments, cells],
                    )
            else:
                values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(batch))
                params = [
                    value
                    for row in zip(
                        ids, [sheet_id] * len(batch), numbers, parents, moments, cells, strict=True
                    )
                    for value in row
                ]
                cursor.execute(
                    f"INSERT INTO {table} ({columns}) VALUES {values}" + tail,  # noqa: S608
                    params,
                )


def rows_delete(sheet_id: int, ids: list[int]) -> None:
    for start in range(0, len(ids), 500):  # SQLite caps the parameters in one query
        Row.objects.filter(sheet_id=sheet_id, pk__in=ids[start : start + 500]).delete()


def columns_replace(sheet_id: int, columns: dict[int, dict]) -> None:
    Column.objects.filter(sheet_id=sheet_id).exclude(pk__in=list(columns)).delete()
    Column.objects.bulk_create(
        [Column(id=pk, sheet_id=sheet_id, **fields) for pk, fields in columns.items()],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["sheet", *_COLUMN_FIELDS],
    )
