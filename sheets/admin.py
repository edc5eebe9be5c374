from __future__ import annotations

from django.contrib import admin

from sheets.models import Column, Sheet, WebhookRejection


class ColumnInline(admin.TabularInline):
    model = Column
    fields = ["index", "title", "type", "primary", "options"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


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
        "webhook_id",
        "webhook_status",
        "created_at",
    ]
    filter_horizontal = ["granted_users", "granted_groups"]
    inlines = [ColumnInline]

    def has_add_permission(self, request) -> bool:
        return False  # sheets arrive through `manage.py sync_sheets`


@admin.register(WebhookRejection)
class WebhookRejectionAdmin(admin.ModelAdmin):
    list_display = ["received_at", "reason", "webhook_id", "remote_addr"]
    list_filter = ["reason"]
    readonly_fields = ["received_at", "reason", "webhook_id", "remote_addr", "body_excerpt"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
