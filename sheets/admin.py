from __future__ import annotations

from django.contrib import admin

from sheets.models import (
    CellEdit,
    Column,
    RowEdit,
    Sheet,
    SheetGrant,
    WebhookNonce,
    WebhookRejection,
)
from sheets.receiver import webhook_callback_counts


class ColumnInline(admin.TabularInline):
    model = Column
    fields = ["index", "title", "type", "primary", "options"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class SheetGrantInline(admin.TabularInline):
    model = SheetGrant
    fields = ["user", "group", "role"]
    autocomplete_fields = ["user", "group"]
    extra = 0


@admin.register(Sheet)
class SheetAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "id",
        "row_count",
        "version",
        "sync_state",
        "synced_at",
        "webhook_status",
    ]
    list_filter = ["sync_state", "webhook_status"]
    search_fields = ["name", "id"]
    # The webhook's shared secret is never shown (and is not editable anyway).
    exclude = ["webhook_shared_secret"]
    readonly_fields = [
        "id",
        "name",
        "version",
        "row_count",
        "permalink",
        "sync_state",
        "sync_outcome",
        "synced_at",
        "sync_started_at",
        "sync_requested_at",
        "webhook_id",
        "webhook_status",
        "created_at",
    ]
    inlines = [SheetGrantInline, ColumnInline]

    def has_add_permission(self, request) -> bool:
        return False  # sheets arrive through `manage.py sync_sheets`


@admin.register(WebhookRejection)
class WebhookRejectionAdmin(admin.ModelAdmin):
    """A sample of refused callbacks; the list page shows every outcome counted in Redis."""

    list_display = ["received_at", "reason", "webhook_id", "count", "remote_addr"]
    list_filter = ["reason"]
    readonly_fields = [
        "received_at",
        "reason",
        "webhook_id",
        "count",
        "remote_addr",
        "body_excerpt",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "callback_counts": webhook_callback_counts()}
        return super().changelist_view(request, extra_context)


@admin.register(WebhookNonce)
class WebhookNonceAdmin(admin.ModelAdmin):
    """Callbacks already acted on (a replay of one is ignored); read-only."""

    list_display = ["received_at", "webhook_id", "nonce"]
    search_fields = ["=webhook_id", "=nonce"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class _JournalAdmin(admin.ModelAdmin):
    """The journal is written by the services only; the admin reads it."""

    list_select_related = ["user", "sheet"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CellEdit)
class CellEditAdmin(_JournalAdmin):
    list_display = [
        "created_at",
        "user",
        "sheet",
        "row_id",
        "column_id",
        "old_display",
        "new_display",
        "source",
        "status",
    ]
    list_filter = ["status", "source", "sheet"]
    search_fields = ["user__username", "old_display", "new_display", "error", "=row_id"]


@admin.register(RowEdit)
class RowEditAdmin(_JournalAdmin):
    list_display = ["created_at", "user", "sheet", "kind", "source", "status"]
    list_filter = ["kind", "status", "source", "sheet"]
    search_fields = ["user__username", "error"]
