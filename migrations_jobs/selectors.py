"""Reads about jobs, shaped for the workers, the admin and the API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob

ChunkStatus = JobChunk.Status


def job_next_wake_in(*, job_id: int, now: dt.datetime | None = None) -> float | None:
    """Seconds until a worker has something to do for the job, or None when nothing is
    left (no chunk pending or sending).

    Something to do: a pending chunk comes due (while fewer than ``MIGRATION_MAX_IN_FLIGHT``
    are in flight), or a lease in flight expires (its worker may have died).
    """
    now = now or timezone.now()
    found = JobChunk.objects.filter(job_id=job_id, status__in=JobChunk.OPEN_STATUSES).aggregate(
        pending=Count("pk", filter=Q(status=ChunkStatus.PENDING)),
        sending=Count("pk", filter=Q(status=ChunkStatus.SENDING)),
        next_due=Min("not_before", filter=Q(status=ChunkStatus.PENDING)),
        next_expiry=Min("lease_expires_at", filter=Q(status=ChunkStatus.SENDING)),
    )
    if not found["pending"] and not found["sending"]:
        return None
    moments = []
    if found["pending"] and found["sending"] < max(1, settings.MIGRATION_MAX_IN_FLIGHT):
        moments.append(found["next_due"])
    if found["sending"] and found["next_expiry"] is not None:
        moments.append(found["next_expiry"])
    moments = [moment for moment in moments if moment is not None]
    if not moments:
        return 0.0
    return max(0.0, (min(moments) - now).total_seconds())


def job_is_stalled(*, job: MigrationJob, now: dt.datetime, stall_s: float) -> bool:
    """True when an active job shows no sign of a worker: no live lease, no claim or sweep
    for ``stall_s``, and no wake-up due within ``stall_s`` of now."""
    stall = dt.timedelta(seconds=stall_s)
    if JobChunk.objects.filter(
        job_id=job.pk, status=ChunkStatus.SENDING, lease_expires_at__gt=now
    ).exists():
        return False
    last_seen = job.heartbeat_at or job.started_at or job.created_at
    if last_seen is not None and last_seen > now - stall:
        return False
    return not (job.wake_token and job.wake_at is not None and job.wake_at > now - stall)


def job_progress(*, job: MigrationJob) -> dict[str, Any]:
    """Counts for a progress bar and a summary line."""
    chunks = dict(
        JobChunk.objects.filter(job=job)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by("status")
    )
    return {
        "status": job.status,
        "total": job.total_customers,
        "sent": job.sent_customers,
        "failed": job.failed_customers,
        "percent": job.progress_percent,
        "chunks": {status: chunks.get(status, 0) for status in ChunkStatus.values},
        "requests": job.request_count,
        "retried_unknown": job.retried_unknown_count,
    }


def job_attempts(*, job: MigrationJob) -> QuerySet[ChunkAttempt]:
    """Every request made for the job, oldest first."""
    return (
        ChunkAttempt.objects.filter(chunk__job=job)
        .select_related("chunk")
        .order_by("started_at", "pk")
    )
