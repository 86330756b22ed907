"""Reads about jobs, shaped for the workers, the admin and the API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from customers.models import Outcome, StagedCustomer, StagingBatch
from migrations_jobs.models import ChunkAttempt, Delivery, JobChunk, MigrationJob

# The home page's, named here as the rest of the console's selectors are.
from migrations_jobs.selectors.home import customers_sent_per_day as customers_sent_per_day
from migrations_jobs.selectors.home import jobs_active_count as jobs_active_count
from migrations_jobs.selectors.home import recent_batches as recent_batches
from migrations_jobs.selectors.phases import chunks_by_endpoint, job_phases

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
    counted = chunks_by_endpoint(job=job)
    chunks: dict[str, int] = {}
    for statuses in counted.values():
        for status, count in statuses.items():
            chunks[status] = chunks.get(status, 0) + count
    return {
        "status": job.status,
        "total": job.total_customers,
        "sent": job.sent_customers,
        "failed": job.failed_customers,
        "skipped": job.skipped_customers,
        "percent": job.progress_percent,
        "chunks": {status: chunks.get(status, 0) for status in ChunkStatus.values},
        "requests": job.request_count,
        "retried_unknown": job.retried_unknown_count,
        "phases": [
            {key: phase[key] for key in PHASE_KEYS}
            for phase in job_phases(job=job, counted=counted)
        ],
    }


# What a job's progress tells of each phase (``job_phases``, without its labels).
PHASE_KEYS = ("endpoint", "state", "chunks", "total", "sent", "failed", "skipped")


# --- pace and time left ---------------------------------------------------------------------

HOUR_S = 3600.0


def pace_duration_s(*, requests: int, interval_s: float, hourly_cap: int) -> float | None:
    """Seconds that ``requests`` requests take at the pace: one every ``interval_s`` seconds
    (each counted as a full interval, its answer included) and at most ``hourly_cap`` in any
    hour. None when neither limit is set: requests then leave as fast as Masivo answers."""
    interval = max(0.0, float(interval_s))
    cap = max(0, int(hourly_cap))
    if requests <= 0:
        return 0.0
    if not interval and not cap:
        return None
    if not cap or interval * cap >= HOUR_S:
        return requests * interval
    # The cap binds: every ``cap`` requests, the next one waits for the first of them to
    # leave the one-hour window.
    full_hours, rest = divmod(requests - 1, cap)
    return full_hours * HOUR_S + (rest + 1) * interval


def pace_hourly_cap_binds(*, requests: int, interval_s: float, hourly_cap: int) -> bool:
    """True when the hourly cap, not the interval, is what makes ``requests`` take long."""
    cap = max(0, int(hourly_cap))
    return bool(cap) and requests > cap and max(0.0, float(interval_s)) * cap < HOUR_S


def configured_pace() -> tuple[float, int]:
    """The pace workers keep: (seconds between requests, requests an hour; 0 means no limit)."""
    return float(settings.MIGRATION_MIN_INTERVAL_S), int(settings.MIGRATION_HOURLY_CAP)


def job_eta_s(
    *, job: MigrationJob, open_chunks: int, now: dt.datetime | None = None
) -> float | None:
    """Seconds until an active job is likely to end, or None when it is not active or
    nothing tells.

    The pace and the ``open_chunks`` requests left say how long; with no pace configured,
    the job's own rate so far does.
    """
    if not job.is_active:
        return None
    interval, cap = configured_pace()
    by_pace = pace_duration_s(requests=open_chunks, interval_s=interval, hourly_cap=cap)
    if by_pace is not None:
        return by_pace
    done = job.sent_customers + job.failed_customers
    left = max(0, job.total_customers - done)
    if not left or not open_chunks:
        return 0.0
    if job.started_at is None or not done:
        return None
    elapsed = max(0.0, ((now or timezone.now()) - job.started_at).total_seconds())
    return elapsed * left / done


def job_duration_s(*, job: MigrationJob, now: dt.datetime | None = None) -> float | None:
    """How long the job has been running, or ran: None before it started."""
    if job.started_at is None:
        return None
    end = job.finished_at or (now or timezone.now())
    return max(0.0, (end - job.started_at).total_seconds())


# --- the admin's history, job page and console home ------------------------------------------


def job_history(*, jobs: QuerySet[MigrationJob] | None = None) -> QuerySet[MigrationJob]:
    """Jobs with their batch and users joined, and ``open_chunk_count`` (chunks pending or
    sending) for the time left, in one query."""
    open_chunks = (
        JobChunk.objects.filter(job=OuterRef("pk"), status__in=JobChunk.OPEN_STATUSES)
        .order_by()
        .values("job")
        .annotate(n=Count("pk"))
        .values("n")
    )
    jobs = MigrationJob.objects.all() if jobs is None else jobs
    return jobs.select_related("batch", "started_by", "cancelled_by").annotate(
        open_chunk_count=Coalesce(Subquery(open_chunks), 0)
    )


def job_chunk_page(
    *, job: MigrationJob, status: str | None = None, offset: int = 0, limit: int = 50
) -> list[JobChunk]:
    """One page of the job's chunks in order, each with its attempts (for these chunks only)."""
    chunks = (
        JobChunk.objects.filter(job=job)
        .select_related("parent")
        .defer("customer_ids", "parent__customer_ids")
        .order_by("sequence")
    )
    if status:
        chunks = chunks.filter(status=status)
    attempts = Prefetch("attempt_log", queryset=ChunkAttempt.objects.order_by("number", "pk"))
    return list(chunks.prefetch_related(attempts)[offset : offset + limit])


def job_failed_chunks(*, job_id: int, may_retry: bool | None = None) -> QuerySet[JobChunk]:
    """The job's failed chunks not retried yet. ``may_retry`` True: only those that failed
    on passing failures (attempts spent on network errors, timeouts, 429, 5xx), which a
    retry may send; False: only those refused for good (``JobChunk.is_permanent``, set
    where the chunk fails, from the answer's action)."""
    chunks = JobChunk.objects.filter(
        job_id=job_id, status=ChunkStatus.FAILED, children__isnull=True
    )
    if may_retry is not None:
        chunks = chunks.filter(is_permanent=not may_retry)
    return chunks


def job_retryable_chunks(*, job: MigrationJob) -> tuple[int, int]:
    """(chunks, customers) that "retry failed" would send again: failed on passing
    failures, not yet retried."""
    found = job_failed_chunks(job_id=job.pk, may_retry=True).aggregate(
        chunks=Count("pk"), customers=Sum("customer_count")
    )
    return found["chunks"] or 0, found["customers"] or 0


def job_failed_chunk_counts(*, job: MigrationJob) -> dict[str, int]:
    """The failed chunks not retried yet, and their customers, by whether a retry may
    send them (``retryable``) or Masivo refused them for good (``refused``)."""
    found = job_failed_chunks(job_id=job.pk).aggregate(
        retryable=Count("pk", filter=Q(is_permanent=False)),
        retryable_customers=Sum("customer_count", filter=Q(is_permanent=False)),
        refused=Count("pk", filter=Q(is_permanent=True)),
        refused_customers=Sum("customer_count", filter=Q(is_permanent=True)),
    )
    return {name: value or 0 for name, value in found.items()}


@dataclass(frozen=True)
class ChunkFailure:
    """What is recorded of a failed (or split) chunk's last answer: what the job page and
    the CSV explain in words (``migrations_jobs.failures``)."""

    chunk_id: int
    status_code: int | None
    outcome: str
    is_permanent: bool
    attempts: int
    customer_count: int
    may_have_arrived: bool
    error: str
    # The last attempt's: Masivo's own words, and the client's error class.
    excerpt: str
    error_class: str

    @property
    def is_recorded(self) -> bool:
        """Whether an answer is recorded to explain (not so for a chunk written by hand or
        failed before answers were kept): otherwise its error text is all there is."""
        return bool(self.outcome or self.status_code)

    @classmethod
    def of_chunk(cls, chunk: JobChunk) -> ChunkFailure:
        """From a chunk whose attempts are prefetched in order (``job_chunk_page``)."""
        attempts = list(chunk.attempt_log.all())
        last = attempts[-1] if attempts else None
        return cls(
            chunk_id=chunk.pk,
            status_code=chunk.last_status_code,
            outcome=chunk.last_outcome,
            is_permanent=chunk.is_permanent,
            attempts=chunk.attempts,
            customer_count=chunk.customer_count,
            may_have_arrived=chunk.may_have_arrived,
            error=chunk.last_error,
            excerpt=last.response_excerpt if last else "",
            error_class=last.error_class if last else "",
        )


def chunk_failures(
    *, job: MigrationJob, chunk_ids: Iterable[int] | None = None
) -> dict[int, ChunkFailure]:
    """The failed chunks of the job (or the chunks ``chunk_ids``, whatever their status),
    by id, each with its last attempt's response excerpt: one query."""
    chunks = JobChunk.objects.filter(job=job)
    if chunk_ids is None:
        chunks = chunks.filter(status=ChunkStatus.FAILED)
    else:
        chunks = chunks.filter(pk__in=list(chunk_ids))
    last = ChunkAttempt.objects.filter(chunk=OuterRef("pk")).order_by("-number", "-pk")
    rows = chunks.annotate(
        excerpt=Subquery(last.values("response_excerpt")[:1]),
        error_class=Subquery(last.values("error_class")[:1]),
    ).values_list(
        "pk",
        "last_status_code",
        "last_outcome",
        "is_permanent",
        "attempts",
        "customer_count",
        "may_have_arrived",
        "last_error",
        "excerpt",
        "error_class",
    )
    return {row[0]: ChunkFailure(*row[:8], row[8] or "", row[9] or "") for row in rows}


def job_customers(
    *, job: MigrationJob, outcome: str | None = None, possibly_twice: bool = False
) -> QuerySet[StagedCustomer]:
    """The customers with an outcome in this job (only ``outcome``, and only the ones that
    may be in Masivo twice with ``possibly_twice``), in the order they were staged.

    Each carries ``chunk_sequence`` and ``chunk_attempts`` (the chunk that decided its
    outcome), and for a skipped one ``other_batch_name`` and ``other_delivery_status``:
    the batch whose job held its id, and where that delivery stands now.
    """
    chunk = JobChunk.objects.filter(pk=OuterRef("outcome_chunk_id")).order_by()
    other_job = MigrationJob.objects.filter(pk=OuterRef("outcome_other_job_id")).order_by()
    other_delivery = Delivery.objects.filter(
        legacy_id=OuterRef("legacy_id"), job_id=OuterRef("outcome_other_job_id")
    ).order_by()
    customers = StagedCustomer.objects.filter(batch_id=job.batch_id, outcome_job_id=job.pk)
    if outcome:
        customers = customers.filter(outcome=outcome)
    if possibly_twice:
        customers = customers.filter(outcome=Outcome.SENT, outcome_maybe_twice=True)
    return (
        customers.only(
            "pk",
            "legacy_id",
            "name",
            "email",
            "outcome",
            "outcome_at",
            "outcome_error",
            "outcome_chunk_id",
            "outcome_other_job_id",
            "outcome_maybe_twice",
        )
        .annotate(
            chunk_sequence=Subquery(chunk.values("sequence")[:1]),
            chunk_attempts=Subquery(chunk.values("attempts")[:1]),
            other_batch_name=Subquery(other_job.values("batch__name")[:1]),
            other_delivery_status=Subquery(other_delivery.values("status")[:1]),
        )
        .order_by("pk")
    )


def job_failed_customers(*, job: MigrationJob) -> QuerySet[StagedCustomer]:
    """The customers whose outcome in this job is ``failed`` (see ``job_customers``)."""
    return job_customers(job=job, outcome=Outcome.FAILED)


def job_possibly_twice_count(*, job: MigrationJob) -> int:
    """Customers of the job that Masivo may hold twice (sent after an unknown outcome)."""
    return StagedCustomer.objects.filter(
        batch_id=job.batch_id, outcome_job_id=job.pk, outcome=Outcome.SENT, outcome_maybe_twice=True
    ).count()


def batch_outcome_counts(*, batch: StagingBatch) -> dict[str, int]:
    """How many of the customers the batch sends (valid, not excluded) Masivo accepted,
    refused, skipped, or has not had yet; excluded customers are in none of them."""
    found = StagedCustomer.objects.filter(batch=batch, is_valid=True, is_excluded=False).aggregate(
        **{outcome: Count("pk", filter=Q(outcome=outcome)) for outcome in Outcome.values}
    )
    return {outcome: found[outcome] or 0 for outcome in found}


def batch_sendable_count(*, batch: StagingBatch) -> int:
    """Customers a job for the batch would send: valid and not excluded."""
    return StagedCustomer.objects.filter(batch=batch, is_valid=True, is_excluded=False).count()
