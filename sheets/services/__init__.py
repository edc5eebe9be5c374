"""Writes to Smartsheet on a person's behalf (keyword-only services; each checks the grant).

cells.py: `cell_update` and the path every write follows (read the row, conflict check, write,
mirror + journal, announce), pending edits. paste.py: `cells_paste`. rows.py: `row_add`,
`rows_delete`. undo.py: `edit_undo`, `last_edit_undo`.
"""

from __future__ import annotations

from sheets.services.cells import (
    CellResult,
    PasteResult,
    cell_update,
    pending_edits_apply,
    sheet_for_edit,
)
from sheets.services.paste import cells_paste
from sheets.services.rows import row_add, rows_delete
from sheets.services.undo import edit_undo, last_edit_undo

__all__ = [
    "CellResult",
    "PasteResult",
    "cell_update",
    "cells_paste",
    "edit_undo",
    "last_edit_undo",
    "pending_edits_apply",
    "row_add",
    "rows_delete",
    "sheet_for_edit",
]
