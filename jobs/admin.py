from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, When
from django.urls import reverse
from django.utils.html import format_html

from jobs.models import Job, JobRow
from jobs.services import JobInvalid, job_cancel, job_retry_failed

# A job's change page shows this many of its rows inline (failures first); the JobRow changelist,
# filtered to the job, has them all. 5,000 inline forms would take seconds to render.
INLINE_ROWS = 50

_ROW_FIELDS = [
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


def _failed_first(queryset):
    return queryset.order_by(
        Case(When(status=JobRow.Status.FAILED, then=0), default=1), "row_number"
    )


def _rows_url(job_id: int, **filters: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"job__id__exact": job_id, **filters}.items())
    return f"{reverse('admin:jobs_jobrow_changelist')}?{query}"


class JobRowInline(admin.TabularInline):
    model = JobRow
    verbose_name_plural = f"rows (failures first, at most {INLINE_ROWS}; all under “Rows” above)"
    fields = _ROW_FIELDS
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        # Failures first, as on the job's page, and only the first INLINE_ROWS. The formset
        # filters the queryset by job afterwards, which a sliced queryset refuses: pick the ids
        # here (the job is the page's object) and hand over an unsliced queryset of them.
        queryset = super().get_queryset(request)
        match = request.resolver_match
        job_id = match.kwargs.get("object_id") if match else None
        if job_id is None:
            return _failed_first(queryset)
        ids = list(
            _failed_first(queryset.filter(job_id=job_id)).values_list("pk", flat=True)[:INLINE_ROWS]
        )
        return _failed_first(queryset.filter(pk__in=ids))


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
        "rows",
        *(f.name for f in Job._meta.concrete_fields if f.name not in ("id", "name", "budget")),
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

    @admin.display(description="Rows")
    def rows(self, job: Job) -> str:
        total = job.rows.count()
        failed = job.rows.filter(status=JobRow.Status.FAILED).count()
        shown = min(total, INLINE_ROWS)
        return format_html(
            '{} rows ({} shown below, failures first): <a href="{}">all rows</a> · '
            '<a href="{}">{} failed</a>',
            total,
            shown,
            _rows_url(job.pk),
            _rows_url(job.pk, status__exact=JobRow.Status.FAILED),
            failed,
        )


@admin.register(JobRow)
class JobRowAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "job",
        "row_number",
        "row_id",
        "status",
        "short_error",
        "attempts",
        "cost",
    ]
    list_filter = ["status", ("job", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["error", "=row_id", "=job__id", "job__name"]
    list_select_related = ["job"]
    readonly_fields = ["job", *_ROW_FIELDS, "has_output", "write_started_at", "cell_edit"]
    list_per_page = 100
    show_full_result_count = False  # a count over every job's rows on each page is wasted

    def has_add_permission(self, request) -> bool:
        return False  # rows belong to their job; jobs create them

    @admin.display(description="error")
    def short_error(self, row: JobRow) -> str:
        return row.error if len(row.error) <= 80 else f"{row.error[:79]}…"
