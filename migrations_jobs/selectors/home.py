"""What the console's home page shows: active jobs, the latest batches, customers sent
per day."""

from __future__ import annotations

import datetime as dt

from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from customers.models import StagingBatch
from migrations_jobs.models import JobChunk, MigrationJob

ChunkStatus = JobChunk.Status


def jobs_active_count() -> int:
    return MigrationJob.objects.filter(status__in=MigrationJob.ACTIVE_STATUSES).count()


def recent_batches(*, limit: int = 6) -> list[StagingBatch]:
    """The latest batches, each with ``latest_job`` (its newest job or None): two queries."""
    batches = list(StagingBatch.objects.select_related("created_by").order_by("-pk")[:limit])
    latest: dict[int, MigrationJob] = {}
    for job in MigrationJob.objects.filter(batch__in=batches).order_by("batch_id", "-pk"):
        latest.setdefault(job.batch_id, job)
    for batch in batches:
        batch.latest_job = latest.get(batch.pk)
    return batches


def customers_sent_per_day(
    *, days: int = 30, now: dt.datetime | None = None
) -> list[tuple[dt.date, int]]:
    """Customers Masivo accepted on each of the last ``days`` days (today included, in the
    current time zone), oldest first, days without any included as 0."""
    zone = timezone.get_current_timezone()
    today = timezone.localdate(now, timezone=zone)
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=zone)
    rows = (
        JobChunk.objects.filter(status=ChunkStatus.SENT, finished_at__gte=start)
        .annotate(day=TruncDate("finished_at", tzinfo=zone))
        .values("day")
        .annotate(n=Sum("customer_count"))
        .order_by("day")
    )
    sent = {row["day"]: row["n"] for row in rows}
    return [
        (day, sent.get(day, 0))
        for day in (first + dt.timedelta(days=offset) for offset in range(days))
    ]
