"""What an answer means for a chunk: one table (``ACTIONS``, keyed by ``answer_action``)
from what the answer was to what happens. The answer's class, whether the worker still
holds the chunk, and whether the body could be split are all the decision needs; how a
chunk then ends is in ``chunks``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from migrations_jobs.client import MasivoAuthError, SendResult
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob
from migrations_jobs.services.base import (
    SPLIT_STATUS_CODES,
    AttemptOutcome,
    ChunkStatus,
    JobStatus,
)
from migrations_jobs.services.chunks import (
    chunk_fail,
    chunk_retry_or_fail,
    chunk_split,
    chunk_succeed,
    chunks_cancel,
)
from migrations_jobs.services.leases import Lease

logger = logging.getLogger("migrations_jobs")


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

    @property
    def blames_body(self) -> bool:
        """A refusal that splitting the body can resolve."""
        return self.outcome == AttemptOutcome.TOO_LARGE or (
            self.outcome == AttemptOutcome.PERMANENT and self.status_code in SPLIT_STATUS_CODES
        )


def answer_action(*, answer: Answer, chunk: JobChunk, is_held: bool) -> str:
    """What to do with a chunk after ``answer``: a key of ``ACTIONS``. ``is_held``: the
    worker that asked still holds the chunk.

    "retry" (a passing failure) may still end in a failed chunk once its attempts are
    spent; "fail" is final for the body, and the chunk records it (``is_permanent``), so
    that "retry failed chunks" leaves it and the job page says why.
    """
    if answer.outcome == AttemptOutcome.ACCEPTED:
        return "succeed"  # even after a lost lease: the customers did arrive
    if not is_held:
        return "keep_as_history"
    if answer.is_retryable:
        return "retry"
    if chunk.customer_count > 1 and answer.blames_body:
        return "split"
    return "fail"


@dataclass(frozen=True)
class Decision:
    """What ``chunk_record`` hands an action: the job (locked), the chunk, the answer."""

    job: MigrationJob
    chunk: JobChunk
    answer: Answer
    now: dt.datetime

    @property
    def this(self) -> QuerySet[JobChunk]:
        return JobChunk.objects.filter(pk=self.chunk.pk)

    @property
    def owned(self) -> QuerySet[JobChunk]:
        return self.this.filter(status=ChunkStatus.SENDING, lease_owner=self.chunk.lease_owner)


def _succeed(d: Decision) -> None:
    chunk_succeed(chunk=d.chunk, chunks=d.this, now=d.now)


def _keep_as_history(d: Decision) -> None:
    logger.info("Chunk %s: answer of a lost lease kept as history only", d.chunk.pk)


def _retry(d: Decision) -> None:
    chunk_retry_or_fail(
        job=d.job,
        chunk=d.chunk,
        chunks=d.owned,
        error=d.answer.error_text,
        is_unknown=d.answer.outcome == AttemptOutcome.RETRY_UNKNOWN,
        retry_after_s=d.answer.retry_after_s,
        now=d.now,
    )


def _split(d: Decision) -> None:
    if d.job.status == JobStatus.CANCELLED:
        chunks_cancel(chunks=d.owned, now=d.now)
    else:
        chunk_split(job=d.job, chunk=d.chunk, chunks=d.owned, error=d.answer.error_text, now=d.now)


def _fail(d: Decision) -> None:
    # The answer is final for this body: recorded, so that retrying leaves the chunk.
    chunk_fail(
        chunk=d.chunk, chunks=d.owned, error=d.answer.error_text, now=d.now, is_permanent=True
    )


ACTIONS: dict[str, Callable[[Decision], None]] = {
    "succeed": _succeed,
    "keep_as_history": _keep_as_history,
    "retry": _retry,
    "split": _split,
    "fail": _fail,
}


def chunk_record(
    *, lease: Lease, answer: Answer, started_at: dt.datetime, left: bool = True
) -> str:
    """Record one request's answer and what it means for the chunk, its customers, its
    deliveries and the job, in one transaction. Returns the chunk's status afterwards.

    A 201 marks the chunk sent even if the worker lost its lease meanwhile (the customers
    did arrive); any other answer changes the chunk only while the lease still holds it.
    ``left`` False: the request never reached its first byte (no connection), so the fence
    did not count the attempt (and the try); they count here, so such attempts are spent
    too.
    """
    now = timezone.now()
    with transaction.atomic():
        job_id = JobChunk.objects.filter(pk=lease.chunk_id).values_list("job_id", flat=True).get()
        job = MigrationJob.objects.select_for_update().get(pk=job_id)
        if not left:
            MigrationJob.objects.filter(pk=job_id).update(request_count=F("request_count") + 1)
            lease.chunks().update(attempts=F("attempts") + 1)
        chunk = JobChunk.objects.select_for_update().get(pk=lease.chunk_id)
        ChunkAttempt.objects.create(
            chunk=chunk,
            number=chunk.attempts,
            worker=lease.worker,
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
        is_held = (
            chunk.status == ChunkStatus.SENDING
            and chunk.lease_owner == lease.worker
            and chunk.lease_version == lease.version
        )
        if is_held:
            JobChunk.objects.filter(pk=chunk.pk).update(
                last_status_code=answer.status_code, last_outcome=answer.outcome
            )
        action = answer_action(answer=answer, chunk=chunk, is_held=is_held)
        ACTIONS[action](Decision(job=job, chunk=chunk, answer=answer, now=now))
        status = JobChunk.objects.values_list("status", flat=True).get(pk=chunk.pk)
    return status
