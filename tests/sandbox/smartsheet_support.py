"""Helpers for the Smartsheet conformance tests: an SDK client on the sandbox, error unpacking."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import smartsheet

from tests.plugins.sandbox import USER_AGENT

TOKEN = "sandbox-token"
OTHER_TOKEN = "sandbox-token-2"


def client(sandbox, token: str | None = TOKEN, **kwargs: Any) -> smartsheet.Smartsheet:
    kwargs.setdefault("user_agent", USER_AGENT)
    ss = smartsheet.Smartsheet(access_token=token, api_base=sandbox.smartsheet_base, **kwargs)
    ss.errors_as_exceptions(True)
    return ss


def api_error(call: Callable[[], Any]) -> Any:
    """Run an SDK call that must fail; returns the SDK's ErrorResult (status_code, code, ...)."""
    try:
        call()
    except smartsheet.exceptions.ApiError as exc:
        return exc.error.result
    raise AssertionError("the call succeeded but should have failed")


def sheet_id(ss: smartsheet.Smartsheet, name: str) -> int:
    return next(s.id for s in ss.Sheets.list_sheets(include_all=True).data if s.name == name)


def column_ids(ss: smartsheet.Smartsheet, sid: int) -> dict[str, int]:
    return {c.title: c.id for c in ss.Sheets.get_columns(sid, include_all=True).data}


def row(cells: dict[int, Any] | None = None, **attrs: Any) -> smartsheet.models.Row:
    data = {**attrs, "cells": [{"columnId": cid, "value": v} for cid, v in (cells or {}).items()]}
    return smartsheet.models.Row(data)


def raw_row(cells: list[dict[str, Any]], **attrs: Any) -> smartsheet.models.Row:
    """A row whose cells are given in API shape, for formulas, objectValue and flags."""
    return smartsheet.models.Row({**attrs, "cells": cells})


def create_sheet(ss: smartsheet.Smartsheet, sheet: dict) -> smartsheet.models.Sheet:
    """POST /sheets through Passthrough: the SDK's Home.create_sheet is deprecated (and its
    deprecation decorator rewrites the process's warning filters)."""
    return smartsheet.models.Sheet(ss.Passthrough.post("/sheets", sheet).data["result"])


def new_sheet(ss: smartsheet.Smartsheet, name: str, columns: list[dict[str, Any]]) -> int:
    return int(create_sheet(ss, {"name": name, "columns": columns}).id)


def cells_of(ss: smartsheet.Smartsheet, sid: int, row_id: int, **params: Any) -> dict[int, Any]:
    """columnId → the SDK's Cell for one row, read back through GET /sheets/{id}."""
    sheet = ss.Sheets.get_sheet(sid, row_ids=[row_id], **params)
    return {c.column_id: c for c in sheet.rows[0].cells}
