"""Sheets, columns, rows and cells in memory, with Smartsheet's validation rules and wire shapes.

Rows are never changed in place: a write builds a new `Row` and swaps it in. That lets a live sheet
share its rows with the pristine seed copy, so a reset only re-copies the row list (not 400,000
cells) of the sheets that were touched, and lets each row cache its serialized cells.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

MAX_CELL_CHARS = 4000
MAX_ROWS_PER_REQUEST = 500
COLUMN_TYPES = {
    "TEXT_NUMBER",
    "DATE",
    "DATETIME",
    "CONTACT_LIST",
    "CHECKBOX",
    "PICKLIST",
    "DURATION",
    "PREDECESSOR",
    "ABSTRACT_DATETIME",
    "MULTI_CONTACT_LIST",
    "MULTI_PICKLIST",
}
SYSTEM_COLUMN_TYPES = {
    "AUTO_NUMBER": "TEXT_NUMBER",
    "CREATED_BY": "CONTACT_LIST",
    "CREATED_DATE": "DATETIME",
    "MODIFIED_BY": "CONTACT_LIST",
    "MODIFIED_DATE": "DATETIME",
}


class ApiError(Exception):
    """An error answer: HTTP status, Smartsheet errorCode and message, optional detail."""

    def __init__(
        self, status: int, code: int, message: str, detail: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


def not_found() -> ApiError:
    return ApiError(404, 1006, "Not Found")


def missing_attribute(name: str) -> ApiError:
    return ApiError(400, 1012, f"A required object attribute is missing from your request: {name}.")


def unparseable(reason: str) -> ApiError:
    return ApiError(400, 1008, f"Unable to parse request. The following error occurred: {reason}")


def not_allowed(attributes: list[str]) -> ApiError:
    """An attribute the sandbox does not store: refused, never silently dropped."""
    return ApiError(
        400, 1032, f"The attribute(s) {', '.join(attributes)} are not allowed for this operation."
    )


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class User:
    id: int
    email: str
    first_name: str
    last_name: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def contact(self) -> dict[str, str]:
        return {"email": self.email, "name": self.name}


class IdMaker:
    """Smartsheet-looking ids (16 digits), reproducible for a given seed text, never repeated."""

    def __init__(self, seed: str, taken: set[int] | None = None) -> None:
        self.rng = random.Random(seed)
        self.taken = taken if taken is not None else set()

    def __call__(self) -> int:
        while True:
            candidate = self.rng.randrange(1_000_000_000_000_000, 9_000_000_000_000_000)
            if candidate not in self.taken:
                self.taken.add(candidate)
                return candidate


@dataclass(eq=False)
class Column:
    id: int
    title: str
    type: str
    primary: bool = False
    options: list[str] = field(default_factory=list)
    width: int = 150
    description: str | None = None
    hidden: bool = False
    locked: bool = False
    validation: bool = False
    system_column_type: str | None = None
    symbol: str | None = None

    def wire(self, index: int) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "version": 0,
            "index": index,
            "title": self.title,
            "type": self.type,
        }
        if self.primary:
            data["primary"] = True
        if self.options:
            data["options"] = list(self.options)
        if self.system_column_type:
            data["systemColumnType"] = self.system_column_type
        if self.symbol:
            data["symbol"] = self.symbol
        if self.description:
            data["description"] = self.description
        data["validation"] = self.validation
        data["width"] = self.width
        if self.hidden:
            data["hidden"] = True
        if self.locked:
            data["locked"] = True
        return data


# A stored cell: (value, displayValue or None[, extra]). Empty cells are not stored at all. The
# optional third item holds what only some cells have: {"formula": text} for a formula cell (its
# value is computed, see formulas.py), {"values": [...]} for a MULTI_PICKLIST cell.
Cell = tuple[Any, ...]


@dataclass(eq=False, slots=True)
class Row:
    id: int
    parent_id: int | None
    created_at: datetime
    modified_at: datetime
    created_by: User
    modified_by: User
    cells: dict[int, Cell]
    expanded: bool = True
    locked: bool = False
    # (column layout, serialized cells): valid as long as the row object and the layout live.
    wire_cells: tuple[tuple[int, ...], list[dict[str, Any]]] | None = None


@dataclass
class HistoryEntry:
    value: Any
    display_value: str | None
    modified_at: datetime
    modified_by: User


class Sheet:
    """One sheet: columns, rows in display order (a pre-order walk of the row tree), history."""

    def __init__(
        self,
        *,
        id: int,
        name: str,
        owner: User,
        columns: list[Column],
        created_at: datetime,
    ) -> None:
        self.id = id
        self.name = name
        self.owner = owner
        self.columns = columns
        self.created_at = created_at
        self.modified_at = created_at
        self.version = 1
        self.rows: list[Row] = []
        self.rows_by_id: dict[int, Row] = {}
        self.history: dict[tuple[int, int], list[HistoryEntry]] = {}
        self.dirty = False  # changed since the seed: a reset must restore it
        self.formula_rows: set[int] = set()  # rows holding a formula cell, recomputed on writes
        # Access for users other than the owner (user id -> level); absent means EDITOR.
        self.shares: dict[int, str] = {}
        self._positions: dict[int, int] | None = None
        # Serialized full-sheet answers for the current version (the 20k-row sheet is big).
        self.response_cache: dict[tuple[int, str], bytes] = {}

    def clone(self) -> Sheet:
        """A live copy sharing the (immutable) rows; cheap even for 20,000 rows."""
        copy = Sheet(
            id=self.id,
            name=self.name,
            owner=self.owner,
            columns=[replace(c, options=list(c.options)) for c in self.columns],
            created_at=self.created_at,
        )
        copy.modified_at = self.modified_at
        copy.version = self.version
        copy.rows = list(self.rows)
        copy.rows_by_id = dict(self.rows_by_id)
        copy.history = {key: list(entries) for key, entries in self.history.items()}
        copy.response_cache = self.response_cache  # same version, same content
        copy.formula_rows = set(self.formula_rows)
        copy.shares = dict(self.shares)
        return copy

    # --- lookup -------------------------------------------------------------------------------

    def column(self, column_id: int) -> Column | None:
        for column in self.columns:
            if column.id == column_id:
                return column
        return None

    def column_index(self, column_id: int) -> int:
        for index, column in enumerate(self.columns):
            if column.id == column_id:
                return index
        return -1

    @property
    def positions(self) -> dict[int, int]:
        if self._positions is None:
            self._positions = {row.id: index for index, row in enumerate(self.rows)}
        return self._positions

    def structure_changed(self) -> None:
        self._positions = None

    def touch(self, moment: datetime) -> None:
        """Every change bumps the version, like Smartsheet's."""
        self.version += 1
        self.modified_at = moment
        self.dirty = True
        self.response_cache = {}

    def subtree_end(self, index: int) -> int:
        """Index just past the row at `index` and all its descendants (contiguous in pre-order)."""
        family = {self.rows[index].id}
        end = index + 1
        while end < len(self.rows) and self.rows[end].parent_id in family:
            family.add(self.rows[end].id)
            end += 1
        return end

    def is_descendant(self, row_id: int, ancestor_id: int) -> bool:
        row = self.rows_by_id.get(row_id)
        while row is not None and row.parent_id is not None:
            if row.parent_id == ancestor_id:
                return True
            row = self.rows_by_id.get(row.parent_id)
        return False

    def replace_row(self, row: Row) -> None:
        self.rows[self.positions[row.id]] = row
        self.rows_by_id[row.id] = row

    # --- history ------------------------------------------------------------------------------

    def access_level(self, user: User) -> str:
        if user.id == self.owner.id:
            return "OWNER"
        return self.shares.get(user.id, "EDITOR")

    def is_admin(self, user: User) -> bool:
        """Owners and admins may edit locked rows and columns and override validation."""
        return self.access_level(user) in ("ADMIN", "OWNER")

    def record_history(
        self,
        old: Row,
        column: Column,
        new_cell: Cell | None,
        entry_time: datetime,
        user: User,
        *,
        new_row: bool = False,
    ) -> None:
        key = (old.id, column.id)
        entries = self.history.get(key)
        if entries is None and new_row:
            entries = self.history[key] = []
        elif entries is None:
            entries = self.history[key] = []
            # The seed's value has no recorded write; keep it as the first entry.
            previous = old.cells.get(column.id)
            if previous is not None:
                entries.append(
                    HistoryEntry(previous[0], previous[1], old.created_at, old.created_by)
                )
        value, display = (new_cell[0], new_cell[1]) if new_cell is not None else (None, None)
        entries.append(HistoryEntry(value, display, entry_time, user))

    def cell_history(self, row: Row, column: Column) -> list[HistoryEntry]:
        entries = self.history.get((row.id, column.id))
        if entries is None:
            cell = row.cells.get(column.id)
            if cell is None:
                return []
            entries = [HistoryEntry(cell[0], cell[1], row.created_at, row.created_by)]
        return list(reversed(entries))
