"""What an answer means for a chunk, its customers, its deliveries and its job.

Every function here but ``chunk_record`` runs inside a transaction that holds the job's
row lock (taken before any chunk row), so counters and chunk numbers stay exact.

``chunk_record`` decides with a table (``ACTIONS``, keyed by ``answer_action``) from what
the answer was to what happens: the answer's class, whether the worker still holds the
chunk, and whether the body could be split are all the decision needs.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from customers.models import Outcome
from customers.outcomes import customers_outcome_transition
from migrations_jobs.client import MasivoAuthError, SendResult, backoff_delay
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob
from migrations_jobs.services.base import (
    ERR_CANCELLED,
    ERR_GAVE_UP,
    ERR_HELD,
    ERR_LEASE_EXPIRED,
    ERROR_CHARS,
    LEASE_CLEARED,
    SPLIT_STATUS_CODES,
    AttemptOutcome,
    ChunkStatus,
    JobStatus,
    chunks_transition,
    holds_unknown_outcomes,
)
from migrations_jobs.services.deliveries import (
    deliveries_move,
    deliveries_release,
    deliveries_sent,
)
from migrations_jobs.services.leases import Lease, lease_owner_is_dead

logger = logging.getLogger("migrations_jobs")


def chunk_succeed(
    *,
    chunk: JobChunk,
    chunks: QuerySet[JobChunk],
    now: dt.datetime,
    maybe_twice: bool | None = None,
) -> bool:
    """The chunk's customers arrived: sent, with their deliveries. They may be in Masivo
    twice when an earlier request of the chunk may have arrived too (``maybe_twice``
    defaults to that)."""
    if not chunks_transition(
        chunks=chunks, to=ChunkStatus.SENT, finished_at=now, last_error="", **LEASE_CLEARED
    ):
        return False
    customers_outcome_transition(
        customer_ids=chunk.customer_ids,
        to=Outcome.SENT,
        job_id=chunk.job_id,
        chunk_id=chunk.pk,
        at=now,
        maybe_twice=chunk.may_have_arrived if maybe_twice is None else maybe_twice,
    )
    deliveries_sent(chunk_ids=[chunk.pk], now=now)
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
    customers_outcome_transition(
        customer_ids=chunk.customer_ids,
        to=Outcome.FAILED,
        job_id=chunk.job_id,
        chunk_id=chunk.pk,
        at=now,
        error=error,
    )
    deliveries_release(chunk_ids=[chunk.pk], may_have_arrived=chunk.may_have_arrived)
    MigrationJob.objects.filter(pk=chunk.job_id).update(
        failed_customers=F("failed_customers") + chunk.customer_count
    )
    return True


def chunks_cancel(
    *, chunks: QuerySet[JobChunk], now: dt.datetime, error: str = ERR_CANCELLED
) -> bool:
    """Cancel the chunks of ``chunks`` that may be, and settle their deliveries: released,
    or kept as uncertain for a chunk whose request may have reached Masivo."""
    rows = list(
        chunks.filter(status__in=_sources_of(ChunkStatus.CANCELLED)).values_list(
            "pk", "may_have_arrived"
        )
    )
    if not rows:
        return False
    moved = chunks_transition(
        chunks=chunks.filter(pk__in=[pk for pk, _maybe in rows]),
        to=ChunkStatus.CANCELLED,
        finished_at=now,
        last_error=error[:ERROR_CHARS],
        **LEASE_CLEARED,
    )
    for may_have_arrived in (False, True):
        deliveries_release(
            chunk_ids=[pk for pk, maybe in rows if maybe == may_have_arrived],
            may_have_arrived=may_have_arrived,
        )
    return bool(moved)


def _sources_of(to: str) -> tuple[str, ...]:
    return tuple(status for status, targets in JobChunk.TRANSITIONS.items() if to in targets)


def chunk_split(
    *, job: MigrationJob, chunk: JobChunk, chunks: QuerySet[JobChunk], error: str, now: dt.datetime
) -> bool:
    """Replace a refused chunk by two pending halves, to find the refused customers. The
    halves take over the chunk's deliveries (already booked)."""
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
                may_have_arrived=chunk.may_have_arrived,
                booked_at=chunk.booked_at,
                not_before=now,
            )
            for offset, part in enumerate((ids[:half], ids[half:]))
        ]
    )
    for half_chunk in JobChunk.objects.filter(job_id=job.pk, sequence__in=[first, first + 1]):
        deliveries_move(from_chunk_id=chunk.pk, to_chunk=half_chunk)
    MigrationJob.objects.filter(pk=job.pk).update(chunk_count=first + 1)
    job.chunk_count = first + 1
    return True


def chunk_hold(*, chunk: JobChunk, chunks: QuerySet[JobChunk], error: str) -> bool:
    """Keep a chunk whose outcome is unknown for an operator's decision: its customers stay
    not sent, its deliveries stay booked."""
    return bool(
        chunks_transition(
            chunks=chunks,
            to=ChunkStatus.HELD,
            last_error=(ERR_HELD % {"error": error})[:ERROR_CHARS],
            **LEASE_CLEARED,
        )
    )


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
    when ``MIGRATION_MAX_ATTEMPTS`` are spent, cancelled when the job was cancelled, held
    for an operator when its outcome is unknown and ``MIGRATION_UNKNOWN_OUTCOME`` says so.
    """
    if is_unknown:
        chunk.may_have_arrived = True
        chunks.update(may_have_arrived=True)
    if job.status == JobStatus.CANCELLED:
        chunks_cancel(chunks=chunks, now=now)
        return ChunkStatus.CANCELLED
    if is_unknown and holds_unknown_outcomes():
        chunk_hold(chunk=chunk, chunks=chunks, error=error)
        return ChunkStatus.HELD
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
    """Take back the job's chunks whose worker is gone: its lease expired, or it named a
    process of this host that no longer exists. The caller holds the job's row lock.

    A chunk whose request never left goes back to pending quietly. One whose request had
    left may have reached Masivo: the loss is recorded as an attempt and the chunk follows
    the rules of an unknown outcome (sent again, or held for an operator).
    """
    sending = JobChunk.objects.filter(job_id=job.pk, status=ChunkStatus.SENDING)
    released = 0
    for chunk in sending.select_for_update():
        expired = chunk.lease_expires_at is None or chunk.lease_expires_at <= now
        if not expired and not lease_owner_is_dead(chunk.lease_owner):
            continue
        still_held = JobChunk.objects.filter(
            pk=chunk.pk,
            status=ChunkStatus.SENDING,
            lease_owner=chunk.lease_owner,
            lease_version=chunk.lease_version,
        )
        if job.status == JobStatus.CANCELLED:
            released += chunks_cancel(chunks=still_held, now=now)
            continue
        if chunk.request_left_at is None:
            # Booked at most, never sent: safe to send by anyone, at once.
            released += chunks_transition(
                chunks=still_held, to=ChunkStatus.PENDING, not_before=now, **LEASE_CLEARED
            )
            continue
        ChunkAttempt.objects.create(
            chunk=chunk,
            number=chunk.attempts,
            worker=chunk.lease_owner,
            customer_count=chunk.customer_count,
            started_at=chunk.request_left_at,
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
            chunks=still_held,
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

    @property
    def blames_body(self) -> bool:
        """A refusal that splitting the body can resolve."""
        return self.outcome == AttemptOutcome.TOO_LARGE or (
            self.outcome == AttemptOutcome.PERMANENT and self.status_code in SPLIT_STATUS_CODES
        )


def answer_action(*, answer: Answer, chunk: JobChunk, is_held: bool) -> str:
    """What to do with a chunk after ``answer``: a key of ``ACTIONS``. ``is_held``: the
    worker that asked still holds the chunk."""
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
    chunk_fail(chunk=d.chunk, chunks=d.owned, error=d.answer.error_text, now=d.now)


ACTIONS: dict[str, Callable[[Decision], None]] = {
    "succeed": _succeed,
    "keep_as_history": _keep_as_history,
    "retry": _retry,
    "split": _split,
    "fail": _fail,
}


def chunk_record(*, lease: Lease, answer: Answer, started_at: dt.datetime) -> str:
    """Record one request's answer and what it means for the chunk, its customers, its
    deliveries and the job, in one transaction. Returns the chunk's status afterwards.

    A 201 marks the chunk sent even if the worker lost its lease meanwhile (the customers
    did arrive); any other answer changes the chunk only while the lease still holds it.
    """
    now = timezone.now()
    with transaction.atomic():
        job_id = JobChunk.objects.filter(pk=lease.chunk_id).values_list("job_id", flat=True).get()
        job = MigrationJob.objects.select_for_update().get(pk=job_id)
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
