from __future__ import annotations

from django.db.models import F, Q, QuerySet

from sheets.models import Sheet


def sheets_visible_to(user) -> QuerySet[Sheet]:
    """Staff see every sheet; others the sheets granted to them or to one of their groups,
    as long as Smartsheet still has them."""
    if not user.is_authenticated:
        return Sheet.objects.none()
    if user.is_staff:
        return Sheet.objects.all()
    granted = Sheet.objects.filter(
        Q(granted_users=user) | Q(granted_groups__in=user.groups.all())
    ).values("pk")
    return Sheet.objects.filter(pk__in=granted).exclude(sync_state=Sheet.SyncState.GONE)


def sheets_needing_sync() -> QuerySet[Sheet]:
    """Sheets a webhook callback asked to sync when the sync could not be queued (Redis down),
    and not synced successfully since: the poller syncs these whatever their webhook's status.
    """
    return Sheet.objects.filter(sync_requested_at__isnull=False).filter(
        Q(sync_started_at__isnull=True) | Q(sync_started_at__lt=F("sync_requested_at"))
    )
