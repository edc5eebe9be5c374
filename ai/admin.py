from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from ai.models import UsageRecord
from ai.selectors import usage_totals


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "user",
        "purpose",
        "job_id",
        "chat_session_id",
        "deployment",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "latency_ms",
        "outcome",
    )
    list_filter = ("outcome", "deployment", "purpose", "created_at")
    search_fields = ("user__username", "error")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    readonly_fields = [f.name for f in UsageRecord._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # records are written by the calls themselves

    def has_change_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        # Totals over what the filters select, shown above the list.
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            response.context_data["usage_totals"] = usage_totals(changelist.queryset)
        return response
