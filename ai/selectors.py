from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import Coalesce

from ai.models import UsageRecord


@dataclass(frozen=True)
class UsageTotals:
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def usage_totals(queryset: QuerySet[UsageRecord] | None = None) -> UsageTotals:
    """Sums over `queryset` (every record when None)."""
    queryset = UsageRecord.objects.all() if queryset is None else queryset
    sums = queryset.aggregate(
        calls=Count("id"),
        prompt_tokens=Coalesce(Sum("prompt_tokens"), 0),
        completion_tokens=Coalesce(Sum("completion_tokens"), 0),
        cost=Coalesce(Sum("cost"), Decimal(0)),
    )
    return UsageTotals(**sums)


def usage_for_job(*, job_id: int) -> UsageTotals:
    return usage_totals(UsageRecord.objects.filter(job_id=job_id))


def usage_for_chat_session(*, chat_session_id: int) -> UsageTotals:
    return usage_totals(UsageRecord.objects.filter(chat_session_id=chat_session_id))


def usage_for_user(*, user_id: int, since: datetime | None = None) -> UsageTotals:
    records = UsageRecord.objects.filter(user_id=user_id)
    if since is not None:
        records = records.filter(created_at__gte=since)
    return usage_totals(records)
