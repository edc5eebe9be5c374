from __future__ import annotations

import json
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from sheets import grid
from sheets.models import CellEdit, Column, Row, RowEdit, Sheet
from sheets.receiver import webhook_callback_receive
from sheets.selectors import sheet_role_for, sheets_visible_to
from sheets.services import (
    cell_update,
    cells_paste,
    edit_undo,
    last_edit_undo,
    row_add,
    rows_delete,
)

logger = logging.getLogger(__name__)


def index(request: HttpRequest) -> HttpResponse:
    sheets = sheets_visible_to(request.user).order_by("name", "pk")
    return render(request, "sheets/index.html", {"sheets": sheets})


@csrf_exempt
@login_not_required
@require_POST
def smartsheet_webhook(request: HttpRequest) -> HttpResponse:
    """Smartsheet's callbacks: challenges, change events and status changes (signed)."""
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return JsonResponse({"error": "bad Content-Length"}, status=400)
    try:
        body = b"" if declared > limit else request.body
    except RequestDataTooBig:
        body = None
    if body is None or declared > limit or len(body) > limit:
        logger.warning("webhook callback over %d bytes refused", limit)
        return JsonResponse({"error": f"the body is over {limit} bytes"}, status=413)
    answer = webhook_callback_receive(
        body=body,
        challenge=request.headers.get("Smartsheet-Hook-Challenge"),
        signature=request.headers.get("Smartsheet-Hmac-SHA256"),
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    response = JsonResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response


# --- The grid -----------------------------------------------------------------------------------


def _sheet_for(request: HttpRequest, sheet_id: int) -> tuple[Sheet, str]:
    """The sheet and the user's role on it; 404 without a grant (its existence is private)."""
    sheet = get_object_or_404(Sheet, pk=sheet_id)
    role = sheet_role_for(user=request.user, sheet=sheet)
    if role is None:
        raise Http404("No sheet here.")
    return sheet, role


def _view_state(request: HttpRequest, columns: list) -> tuple:
    """Filter and sort from the URL (so views can be shared); a bad filter is shown, not used."""
    q = request.GET.get("q", "").strip()
    try:
        condition = grid.filter_parse(text=q, columns=columns)
        problem = ""
    except grid.FilterInvalid as error:
        condition, problem = None, str(error)
    sort = grid.sort_parse(text=request.GET.get("sort", ""), columns=columns)
    return q, condition, problem, sort


def sheet_grid(request: HttpRequest, sheet_id: int) -> HttpResponse:
    """The grid page; with htmx and an offset, just the next rows (infinite scroll)."""
    sheet, role = _sheet_for(request, sheet_id)
    columns = grid.grid_columns(sheet=sheet)
    q, condition, problem, sort = _view_state(request, columns)
    try:
        offset = max(0, int(request.GET.get("offset", 0)))
        # A reconnected page asks again for every row it had loaded.
        limit = min(max(1, int(request.GET.get("limit", grid.PAGE_SIZE))), grid.MAX_LIMIT)
    except ValueError:
        offset, limit = 0, grid.PAGE_SIZE
    page = grid.rows_page(
        sheet=sheet,
        columns=columns,
        editable=role == "edit",
        condition=condition,
        sort=sort,
        offset=offset,
        limit=limit,
    )
    context = {
        "sheet": sheet,
        "role": role,
        "editable": role == "edit",
        "columns": columns,
        "headers": grid.grid_headers(columns=columns, sort=sort),
        "page": page,
        "q": q,
        "condition": condition,
        "filter_problem": problem,
        "sort": sort,
        "sort_param": sort.param if sort else "",
    }
    if request.htmx and "offset" in request.GET:
        return render(request, "sheets/grid.html#rows", context)
    return render(request, "sheets/grid.html", context)


def _cell_context(sheet: Sheet, role: str, row_id: int, column_id: int) -> dict:
    row = get_object_or_404(Row, sheet=sheet, pk=row_id)
    column = get_object_or_404(Column, sheet=sheet, pk=column_id)
    grow = grid.grid_row(
        row=row, columns=[column], editable=role == "edit", depth=grid.row_depth(row=row)
    )
    grid.cells_mark_pending(sheet_id=sheet.pk, rows=[grow])
    return {
        "sheet": sheet,
        "role": role,
        "editable": role == "edit",
        "grow": grow,
        "cell": grow.cells[0],
    }


def sheet_cell(request: HttpRequest, sheet_id: int, row_id: int, column_id: int) -> HttpResponse:
    """GET: the cell as shown, or (?edit=1) its editor. POST: save what was typed."""
    sheet, role = _sheet_for(request, sheet_id)
    context = _cell_context(sheet, role, row_id, column_id)
    cell = context["cell"]
    if request.method == "POST":
        return _cell_save(request, context)
    if request.GET.get("edit") and not cell.readonly:
        context["text"] = request.GET.get("text", cell.edit_text)
        context["expected_json"] = request.GET.get("expected", "")
        if cell.pending:
            context["message"] = cell.pending
        return render(request, "sheets/grid.html#editor", context)
    return render(request, "sheets/grid.html#cell", context)


def _cell_save(request: HttpRequest, context: dict) -> HttpResponse:
    """Save through `cell_update`; the answer is the cell, the editor again, or a conflict card."""
    cell = context["cell"]
    # A multi-select sends one value per option; the service reads them one a line.
    text = "\n".join(request.POST.getlist("text"))
    try:
        expected = json.loads(request.POST.get("expected") or "null")
    except ValueError:
        expected = cell.value
    result = cell_update(
        user=request.user,
        sheet_id=context["sheet"].pk,
        row_id=cell.row_id,
        column_id=cell.column.pk,
        text=text,
        expected=expected,
        force=request.POST.get("force") == "1",
    )
    context["text"] = text
    if result.status == "invalid":
        context.update(message=result.message, invalid=True, expected_json=json.dumps(expected))
        return render(request, "sheets/grid.html#editor", context)
    if result.status == "conflict":
        context.update(result=result, theirs_json=json.dumps(result.theirs))
        return render(request, "sheets/grid.html#conflict", context)
    # Applied, unchanged or pending: the cell as the mirror (and the journal) now have it.
    fresh = _cell_context(context["sheet"], context["role"], cell.row_id, cell.column.pk)
    if result.status == "pending" and result.message:
        fresh["cell"].pending = result.message
    return render(request, "sheets/grid.html#cell", fresh)


HISTORY_PAGE = 50


def sheet_history(request: HttpRequest, sheet_id: int) -> HttpResponse:
    """The sheet's journal, newest first, filtered by user, column and source."""
    sheet, role = _sheet_for(request, sheet_id)
    columns = {c.pk: c for c in sheet.columns.all()}
    edits = CellEdit.objects.filter(sheet=sheet).select_related("user")
    chosen = {k: request.GET.get(k, "") for k in ("user", "column", "source")}
    if chosen["user"]:
        edits = edits.filter(user__username=chosen["user"])
    if chosen["column"].isdigit():
        edits = edits.filter(column_id=int(chosen["column"]))
    if chosen["source"]:
        edits = edits.filter(source=chosen["source"])
    paginator = Paginator(edits.order_by("-created_at", "-pk"), HISTORY_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    numbers = dict(
        Row.objects.filter(sheet=sheet, pk__in=[e.row_id for e in page]).values_list(
            "pk", "row_number"
        )
    )
    for edit in page:
        edit.column = columns.get(edit.column_id)
        edit.row_number = numbers.get(edit.row_id)
    row_edits = RowEdit.objects.filter(sheet=sheet).select_related("user")[:20]
    users = (
        CellEdit.objects.filter(sheet=sheet, user__isnull=False)
        .values_list("user__username", flat=True)
        .distinct()
        .order_by("user__username")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "sheets/history.html",
        {
            "sheet": sheet,
            "editable": role == "edit",
            "page": page,
            "row_edits": row_edits,
            "columns": sorted(columns.values(), key=lambda c: c.index),
            "sources": CellEdit.Source.choices,
            "users": list(users),
            "chosen": chosen,
            "query": query.urlencode(),
        },
    )


# --- Rows, paste and undo: each answers with a toast (htmx) or a message and a redirect ----------


def _told(request: HttpRequest, sheet: Sheet, message: str, level: str = "info", *, to="grid"):
    if request.htmx:
        return render(request, "core/toast.html", {"message": message, "level": level})
    messages.add_message(request, getattr(messages, level.upper(), messages.INFO), message)
    return redirect(f"sheets:{to}", sheet.pk)


def _undo_told(request: HttpRequest, sheet: Sheet, result, *, to: str) -> HttpResponse:
    if result is None:
        return _told(request, sheet, "There is nothing of yours to undo on this sheet.", to=to)
    if result.status == "applied":
        return _told(request, sheet, "Undone.", "success", to=to)
    if result.status == "pending":
        return _told(request, sheet, result.message or "The undo waits for Smartsheet.", to=to)
    return _told(
        request, sheet, result.message or "That change could not be undone.", "error", to=to
    )


@require_POST
def sheet_undo(request: HttpRequest, sheet_id: int) -> HttpResponse:
    """Ctrl+Z: the user's own last change on this sheet."""
    sheet, _ = _sheet_for(request, sheet_id)
    return _undo_told(
        request, sheet, last_edit_undo(user=request.user, sheet_id=sheet.pk), to="grid"
    )


@require_POST
def sheet_edit_undo(request: HttpRequest, sheet_id: int, edit_id: int) -> HttpResponse:
    """The Undo button of one history entry (a cell edit, or with ?kind=row a row edit)."""
    sheet, _ = _sheet_for(request, sheet_id)
    kind = "row" if request.POST.get("kind") == "row" else "cell"
    model = RowEdit if kind == "row" else CellEdit
    get_object_or_404(model, pk=edit_id, sheet=sheet)
    result = edit_undo(user=request.user, edit_id=edit_id, kind=kind)
    return _undo_told(request, sheet, result, to="history")


def _row_ids(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit()]


@require_POST
def sheet_row_add(request: HttpRequest, sheet_id: int) -> HttpResponse:
    sheet, _ = _sheet_for(request, sheet_id)
    below = _row_ids([request.POST.get("below", "")])
    edit = row_add(user=request.user, sheet_id=sheet.pk, below_row_id=below[0] if below else None)
    if edit.status != RowEdit.Status.APPLIED:
        logger.warning("row add on sheet %s refused: %s", sheet.pk, edit.error)
        return _told(request, sheet, "Smartsheet did not add the row. Try again.", "error")
    return _told(request, sheet, "Row added.", "success")


@require_POST
def sheet_rows_delete(request: HttpRequest, sheet_id: int) -> HttpResponse:
    sheet, _ = _sheet_for(request, sheet_id)
    ids = _row_ids(request.POST.getlist("row"))
    if not ids:
        return _told(request, sheet, "Select the rows to delete first.", "warning")
    edit = rows_delete(user=request.user, sheet_id=sheet.pk, row_ids=ids)
    if edit.status != RowEdit.Status.APPLIED:
        logger.warning("rows delete on sheet %s refused: %s", sheet.pk, edit.error)
        return _told(request, sheet, "Smartsheet did not delete the rows. Try again.", "error")
    count = len(edit.row_ids)
    return _told(
        request,
        sheet,
        f"{count} row{'s' if count != 1 else ''} deleted. Ctrl+Z or History brings them back.",
        "success",
    )


@require_POST
def sheet_paste(request: HttpRequest, sheet_id: int) -> HttpResponse:
    """A block copied from a spreadsheet (tab-separated), its top-left cell on the focused one."""
    sheet, _ = _sheet_for(request, sheet_id)
    row_id = _row_ids([request.POST.get("row", "")])
    column_id = _row_ids([request.POST.get("column", "")])
    block = request.POST.get("block", "")
    if not row_id or not column_id or not block.strip():
        return _told(request, sheet, "Select a cell, then paste.", "warning")
    get_object_or_404(Row, sheet=sheet, pk=row_id[0])
    get_object_or_404(Column, sheet=sheet, pk=column_id[0])
    result = cells_paste(
        user=request.user,
        sheet_id=sheet.pk,
        row_id=row_id[0],
        column_id=column_id[0],
        block=block,
    )
    message = "Pasted: " + result.summary()
    if result.refused:
        message += " " + " ".join(reason for _, _, reason in result.refused[:3])
    if result.message:
        message += " " + result.message
    return _told(request, sheet, message, "warning" if result.refused else "success")
