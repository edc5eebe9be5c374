from __future__ import annotations

from django.db.models import Q, QuerySet

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
