from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, When

from jobs.models import Job, JobRow
from jobs.services import JobInvalid, job_cancel, job_retry_failed


class JobRowInline(admin.TabularInline):
    model = JobRow
    fields = [
        "row_number",
        "row_id",
        "status",
        "value_before",
        "output",
        "error",
        "attempts",
        "prompt_tokens",
        "completion_tokens",
        "cost",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        # Failures first, as on the job's page.
        failed_first = Case(When(status=JobRow.Status.FAILED, then=0), default=1)
        return super().get_queryset(request).order_by(failed_first, "row_number")


def _each(request, jobs, service, verb: str) -> None:
    done = 0
    for job in jobs:
        try:
            service(user=request.user, job_id=job.pk)
            done += 1
        except (JobInvalid, PermissionDenied) as exc:
            messages.warning(request, f"{job}: {getattr(exc, 'message', exc)}")
    if done:
        messages.success(request, f"{done} job(s) {verb}.")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "sheet",
        "owner",
        "status",
        "percent",
        "rows_done",
        "rows_failed",
        "rows_skipped",
        "rows_total",
        "cost",
        "created_at",
    ]
    list_filter = ["status", "sheet", "owner"]
    search_fields = ["name", "template", "target_title"]
    list_select_related = ["sheet", "owner"]
    readonly_fields = [
        f.name for f in Job._meta.concrete_fields if f.name not in ("id", "name", "budget")
    ]
    inlines = [JobRowInline]
    actions = ["cancel", "retry_failed"]

    def has_add_permission(self, request) -> bool:
        return False  # jobs start from the form or run_job, which check the template and rows

    @admin.action(description="Cancel the selected jobs")
    def cancel(self, request, queryset):
        _each(request, queryset, job_cancel, "cancelled")

    @admin.action(description="Retry the failed rows of the selected jobs")
    def retry_failed(self, request, queryset):
        _each(request, queryset, job_retry_failed, "queued again for their failed rows")
