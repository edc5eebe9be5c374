"""Helpers for the write-service tests: columns by title, a cell read straight from Smartsheet."""

from __future__ import annotations

from typing import Any

import smartsheet
from django.conf import settings

from core.ratelimit import redis_client
from sheets.models import Column, Row, Sheet
from tests.sheets.conftest import other_user_client


def column_named(sheet: Sheet, title: str) -> Column:
    return Column.objects.get(sheet=sheet, title=title)


def rows_of(sheet: Sheet) -> list[Row]:
    return list(Row.objects.filter(sheet=sheet).order_by("row_number"))


def remote_cell(sandbox, sheet: Sheet, row_id: int, column: Column) -> dict[str, Any]:
    """The cell as Smartsheet holds it now (read by another client, not through the app)."""
    row = other_user_client(sandbox).Sheets.get_row(sheet.pk, row_id)
    cell = next((c for c in row.cells if c.column_id == column.id), None)
    return {} if cell is None else {"value": cell.value, "formula": cell.formula}


def change_in_smartsheet(sandbox, sheet: Sheet, row_id: int, column: Column, value) -> None:
    """Pat changes a cell in Smartsheet; the mirror does not hear of it (no sync, no webhook)."""
    other_user_client(sandbox).Sheets.update_rows(
        sheet.pk,
        [smartsheet.models.Row({"id": row_id, "cells": [{"columnId": column.id, "value": value}]})],
    )


def clear_breaker() -> None:
    """After an outage the breaker is open; in production it half-opens after its timeout."""
    redis = redis_client()
    keys = list(redis.scan_iter(match=f"{settings.REDIS_PREFIX}:breaker:smartsheet*"))
    if keys:
        redis.delete(*keys)
