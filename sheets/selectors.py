from __future__ import annotations

from django.db.models import F, Q, QuerySet

from sheets.models import CellEdit, Sheet, SheetGrant


def _grants_of(user) -> QuerySet[SheetGrant]:
    return SheetGrant.objects.filter(Q(user=user) | Q(group__in=user.groups.all()))


def sheets_visible_to(user) -> QuerySet[Sheet]:
    """Staff see every sheet; others the sheets granted (view or edit) to them or their
    groups, as long as Smartsheet still has them."""
    if not user.is_authenticated:
        return Sheet.objects.none()
    if user.is_staff:
        return Sheet.objects.all()
    return Sheet.objects.filter(pk__in=_grants_of(user).values("sheet_id")).exclude(
        sync_state=Sheet.SyncState.GONE
    )


def sheet_role_for(*, user, sheet: Sheet) -> str | None:
    """ "edit", "view" or None: the strongest of the user's own and their groups' grants.

    Staff edit every sheet.
    """
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_staff:
        return SheetGrant.Role.EDIT
    roles = set(_grants_of(user).filter(sheet=sheet).values_list("role", flat=True))
    if SheetGrant.Role.EDIT in roles:
        return SheetGrant.Role.EDIT
    if SheetGrant.Role.VIEW in roles:
        return SheetGrant.Role.VIEW
    return None


def cell_edits_pending(*, sheet_id: int, row_ids: list[int]) -> dict[tuple[int, int], CellEdit]:
    """The newest edit still waiting for Smartsheet per (row id, column id), for the grid."""
    pending = CellEdit.objects.filter(
        sheet_id=sheet_id, row_id__in=row_ids, status=CellEdit.Status.PENDING
    ).order_by("id")
    return {(edit.row_id, edit.column_id): edit for edit in pending}


def sheets_needing_sync() -> QuerySet[Sheet]:
    """Sheets a webhook callback asked to sync when the sync could not be queued (Redis down),
    and not synced successfully since: the poller syncs these whatever their webhook's status.
    """
    return Sheet.objects.filter(sync_requested_at__isnull=False).filter(
        Q(sync_started_at__isnull=True) | Q(sync_started_at__lt=F("sync_requested_at"))
    )
