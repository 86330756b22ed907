"""What an answer means for a chunk, its customers and its job.

Every function here but ``chunk_record`` runs inside a transaction that holds the job's
row lock (taken before any chunk row), so counters and chunk numbers stay exact.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from customers.models import Outcome, StagedCustomer
from migrations_jobs.client import MasivoAuthError, SendResult, backoff_delay
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob
from migrations_jobs.services.base import (
    ERR_CANCELLED,
    ERR_GAVE_UP,
    ERR_LEASE_EXPIRED,
    ERROR_CHARS,
    LEASE_CLEARED,
    SPLIT_STATUS_CODES,
    AttemptOutcome,
    ChunkStatus,
    JobStatus,
    chunks_transition,
)

logger = logging.getLogger("migrations_jobs")


def customers_mark(*, chunk: JobChunk, outcome: str, now: dt.datetime, error: str = "") -> None:
    StagedCustomer.objects.filter(pk__in=chunk.customer_ids).update(
        outcome=outcome,
        outcome_at=now,
        outcome_error=error[:ERROR_CHARS],
        outcome_job_id=chunk.job_id,
        outcome_chunk_id=chunk.pk,
    )


def chunk_succeed(*, chunk: JobChunk, chunks: QuerySet[JobChunk], now: dt.datetime) -> bool:
    if not chunks_transition(
        chunks=chunks, to=ChunkStatus.SENT, finished_at=now, last_error="", **LEASE_CLEARED
    ):
        return False
    customers_mark(chunk=chunk, outcome=Outcome.SENT, now=now)
    MigrationJob.objects.filter(pk=chunk.job_id).update(
        sent_customers=F("sent_customers") + chunk.customer_count
    )
    return True


def chunk_fail(
    *, chunk: JobChunk, chunks: QuerySet[JobChunk], error: str, now: dt.datetime
) -> bool:
    if not chunks_transition(
        chunks=chunks,
        to=ChunkStatus.FAILED,
        finished_at=now,
        last_error=error[:ERROR_CHARS],
        **LEASE_CLEARED,
    ):
        return False
    customers_mark(chunk=chunk, outcome=Outcome.FAILED, now=now, error=error)
    MigrationJob.objects.filter(pk=chunk.job_id).update(
        failed_customers=F("failed_customers") + chunk.customer_count
    )
    return True


def chunks_cancel(
    *, chunks: QuerySet[JobChunk], now: dt.datetime, error: str = ERR_CANCELLED
) -> bool:
    return bool(
        chunks_transition(
            chunks=chunks,
            to=ChunkStatus.CANCELLED,
            finished_at=now,
            last_error=error[:ERROR_CHARS],
            **LEASE_CLEARED,
        )
    )


def chunk_split(
    *, job: MigrationJob, chunk: JobChunk, chunks: QuerySet[JobChunk], error: str, now: dt.datetime
) -> bool:
    """Replace a refused chunk by two pending halves, to find the refused customers."""
    if not chunks_transition(
        chunks=chunks,
        to=ChunkStatus.SPLIT,
        finished_at=now,
        last_error=error[:ERROR_CHARS],
        **LEASE_CLEARED,
    ):
        return False
    ids = list(chunk.customer_ids)
    half = math.ceil(len(ids) / 2)
    first = job.chunk_count + 1
    JobChunk.objects.bulk_create(
        [
            JobChunk(
                job_id=job.pk,
                sequence=first + offset,
                parent=chunk,
                customer_ids=part,
                customer_count=len(part),
                not_before=now,
            )
            for offset, part in enumerate((ids[:half], ids[half:]))
        ]
    )
    MigrationJob.objects.filter(pk=job.pk).update(chunk_count=first + 1)
    job.chunk_count = first + 1
    return True


def chunk_retry_or_fail(
    *,
    job: MigrationJob,
    chunk: JobChunk,
    chunks: QuerySet[JobChunk],
    error: str,
    is_unknown: bool,
    retry_after_s: float | None,
    now: dt.datetime,
) -> str:
    """After a request that may be tried again: back to pending after a backoff, failed
    when ``MIGRATION_MAX_ATTEMPTS`` are spent, cancelled when the job was cancelled."""
    if job.status == JobStatus.CANCELLED:
        chunks_cancel(chunks=chunks, now=now)
        return ChunkStatus.CANCELLED
    if chunk.attempts >= settings.MIGRATION_MAX_ATTEMPTS:
        chunk_fail(
            chunk=chunk,
            chunks=chunks,
            error=ERR_GAVE_UP % {"attempts": chunk.attempts, "error": error},
            now=now,
        )
        return ChunkStatus.FAILED
    delay = backoff_delay(
        attempt=max(1, chunk.attempts),
        base=settings.MIGRATION_BACKOFF_BASE_S,
        cap=settings.MIGRATION_BACKOFF_MAX_S,
    )
    delay = max(delay, retry_after_s or 0.0)
    extra = {"unknown_outcome_retries": F("unknown_outcome_retries") + 1} if is_unknown else {}
    moved = chunks_transition(
        chunks=chunks,
        to=ChunkStatus.PENDING,
        not_before=now + dt.timedelta(seconds=delay),
        last_error=error[:ERROR_CHARS],
        **LEASE_CLEARED,
        **extra,
    )
    if moved and is_unknown:
        MigrationJob.objects.filter(pk=job.pk).update(
            retried_unknown_count=F("retried_unknown_count") + 1
        )
    return ChunkStatus.PENDING


def chunks_release_expired(*, job: MigrationJob, now: dt.datetime) -> int:
    """Take back the job's chunks whose worker's lease expired; the caller holds the job's
    row lock. A chunk whose request had left may have reached Masivo: the loss is recorded
    as an attempt and the chunk retried (a retry after an unknown outcome)."""
    expired = JobChunk.objects.filter(
        job_id=job.pk, status=ChunkStatus.SENDING, lease_expires_at__lte=now
    )
    released = 0
    for chunk in expired.select_for_update():
        still_expired = JobChunk.objects.filter(
            pk=chunk.pk,
            status=ChunkStatus.SENDING,
            lease_owner=chunk.lease_owner,
            lease_expires_at__lte=now,
        )
        if job.status == JobStatus.CANCELLED:
            released += chunks_cancel(chunks=still_expired, now=now)
            continue
        if chunk.request_started_at is None:
            released += chunks_transition(
                chunks=still_expired, to=ChunkStatus.PENDING, not_before=now, **LEASE_CLEARED
            )
            continue
        ChunkAttempt.objects.create(
            chunk=chunk,
            number=chunk.attempts,
            worker=chunk.lease_owner,
            customer_count=chunk.customer_count,
            started_at=chunk.request_started_at,
            outcome=AttemptOutcome.LEASE_EXPIRED,
            error_class="LeaseExpired",
            response_excerpt=ERR_LEASE_EXPIRED,
        )
        JobChunk.objects.filter(pk=chunk.pk).update(
            last_outcome=AttemptOutcome.LEASE_EXPIRED, last_status_code=None
        )
        chunk_retry_or_fail(
            job=job,
            chunk=chunk,
            chunks=still_expired,
            error=ERR_LEASE_EXPIRED,
            is_unknown=True,
            retry_after_s=None,
            now=now,
        )
        released += 1
    if released:
        logger.warning("Job #%s: took back %s chunk(s) whose worker stopped", job.pk, released)
    return released


@dataclass(frozen=True)
class Answer:
    """One request's result as recorded: a SendResult, or a refusal of the token endpoint."""

    outcome: str
    duration_s: float
    status_code: int | None = None
    error_class: str = ""
    response_excerpt: str = ""
    retry_after_s: float | None = None
    ratelimit: dict = field(default_factory=dict)
    token_refreshed: bool = False
    is_retryable: bool = False
    # When the request began to leave, if the client saw it leave.
    left_at: dt.datetime | None = None

    @classmethod
    def from_result(cls, result: SendResult) -> Answer:
        return cls(
            outcome=AttemptOutcome(result.outcome.value),
            duration_s=result.duration_s,
            status_code=result.status_code,
            error_class=result.error_class,
            response_excerpt=result.response_excerpt,
            retry_after_s=result.retry_after_s,
            ratelimit=dict(result.ratelimit),
            token_refreshed=result.token_refreshed,
            is_retryable=result.outcome.is_retryable,
            left_at=result.left_at,
        )

    @classmethod
    def from_auth_error(cls, error: MasivoAuthError, *, duration_s: float) -> Answer:
        excerpt = f"{error} {error.response_excerpt}".strip()
        return cls(
            outcome=AttemptOutcome.AUTH_ERROR,
            duration_s=duration_s,
            status_code=error.status_code,
            error_class=type(error).__name__,
            response_excerpt=excerpt,
            retry_after_s=error.retry_after_s,
            is_retryable=error.is_transient,
        )

    @property
    def error_text(self) -> str:
        head = f"HTTP {self.status_code}" if self.status_code else (self.error_class or "Error")
        return f"{head}: {self.response_excerpt}" if self.response_excerpt else head


def chunk_record(*, chunk_id: int, worker: str, answer: Answer, started_at: dt.datetime) -> str:
    """Record one request's answer and what it means for the chunk, its customers and the
    job, in one transaction. Returns the chunk's status afterwards.

    A 201 marks the chunk sent even if ``worker`` lost its lease meanwhile (the customers
    did arrive); any other answer changes the chunk only while ``worker`` still holds it.
    """
    now = timezone.now()
    with transaction.atomic():
        job_id = JobChunk.objects.filter(pk=chunk_id).values_list("job_id", flat=True).get()
        job = MigrationJob.objects.select_for_update().get(pk=job_id)
        chunk = JobChunk.objects.select_for_update().get(pk=chunk_id)
        ChunkAttempt.objects.create(
            chunk=chunk,
            number=chunk.attempts,
            worker=worker,
            customer_count=chunk.customer_count,
            started_at=started_at,
            duration_s=answer.duration_s,
            status_code=answer.status_code,
            outcome=answer.outcome,
            error_class=answer.error_class[:100],
            response_excerpt=answer.response_excerpt,
            ratelimit=answer.ratelimit,
            retry_after_s=answer.retry_after_s,
            token_refreshed=answer.token_refreshed,
        )
        this = JobChunk.objects.filter(pk=chunk.pk)
        owned = this.filter(status=ChunkStatus.SENDING, lease_owner=worker)
        if chunk.status == ChunkStatus.SENDING and chunk.lease_owner == worker:
            this.update(last_status_code=answer.status_code, last_outcome=answer.outcome)
        if answer.outcome == AttemptOutcome.ACCEPTED:
            chunk_succeed(chunk=chunk, chunks=this, now=now)
        elif chunk.status != ChunkStatus.SENDING or chunk.lease_owner != worker:
            logger.info("Chunk %s: answer of a lost lease kept as history only", chunk.pk)
        elif answer.is_retryable:
            chunk_retry_or_fail(
                job=job,
                chunk=chunk,
                chunks=owned,
                error=answer.error_text,
                is_unknown=answer.outcome == AttemptOutcome.RETRY_UNKNOWN,
                retry_after_s=answer.retry_after_s,
                now=now,
            )
        elif chunk.customer_count > 1 and (
            answer.outcome == AttemptOutcome.TOO_LARGE
            or (
                answer.outcome == AttemptOutcome.PERMANENT
                and answer.status_code in SPLIT_STATUS_CODES
            )
        ):
            if job.status == JobStatus.CANCELLED:
                chunks_cancel(chunks=owned, now=now)
            else:
                chunk_split(job=job, chunk=chunk, chunks=owned, error=answer.error_text, now=now)
        else:
            chunk_fail(chunk=chunk, chunks=owned, error=answer.error_text, now=now)
        status = JobChunk.objects.values_list("status", flat=True).get(pk=chunk.pk)
    return status
