"""How a chunk ends, or goes back to wait: what each end means for its customers, its
deliveries and its job.

Every function here runs inside a transaction that holds the job's row lock (taken before
any chunk row), so counters and chunk numbers stay exact. ``outcomes.chunk_record`` picks
which one an answer calls for.
"""

from __future__ import annotations

import datetime as dt
import logging
import math

from django.conf import settings
from django.db.models import F, QuerySet

from console.states import sources_of
from customers.models import Outcome
from customers.services import customers_outcome_transition, history_rows_sent
from migrations_jobs.client import backoff_delay
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob
from migrations_jobs.services.base import (
    ERR_CANCELLED,
    ERR_GAVE_UP,
    ERR_HELD,
    ERR_LEASE_EXPIRED,
    ERROR_CHARS,
    LEASE_CLEARED,
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
from migrations_jobs.services.leases import lease_owner_is_dead
from migrations_jobs.services.phases import history_halves, transaction_deliveries_move

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
    if chunk.customer_ids:
        customers_outcome_transition(
            customer_ids=chunk.customer_ids,
            to=Outcome.SENT,
            job_id=chunk.job_id,
            chunk_id=chunk.pk,
            at=now,
            maybe_twice=chunk.may_have_arrived if maybe_twice is None else maybe_twice,
        )
    if chunk.is_history:
        history_rows_sent(kind=chunk.endpoint, row_ids=chunk.item_ids, at=now)
    deliveries_sent(chunk_ids=[chunk.pk], now=now)
    _count(chunk, "sent")
    return True


def _count(chunk: JobChunk, what: str) -> None:
    """Add the chunk's customers (or rows of history) to the job's ``what`` counter."""
    counter, amount = chunk.tally(what)
    MigrationJob.objects.filter(pk=chunk.job_id).update(**{counter: F(counter) + amount})


def chunk_fail(
    *,
    chunk: JobChunk,
    chunks: QuerySet[JobChunk],
    error: str,
    now: dt.datetime,
    is_permanent: bool,
) -> bool:
    """The chunk's customers failed. ``is_permanent``: the answer was final for this body
    (sending it again cannot succeed), as opposed to attempts spent on passing failures;
    "retry failed chunks" sends only the latter again."""
    if not chunks_transition(
        chunks=chunks,
        to=ChunkStatus.FAILED,
        finished_at=now,
        last_error=error[:ERROR_CHARS],
        is_permanent=is_permanent,
        **LEASE_CLEARED,
    ):
        return False
    if chunk.customer_ids:
        customers_outcome_transition(
            customer_ids=chunk.customer_ids,
            to=Outcome.FAILED,
            job_id=chunk.job_id,
            chunk_id=chunk.pk,
            at=now,
            error=error,
        )
    deliveries_release(chunk_ids=[chunk.pk], may_have_arrived=chunk.may_have_arrived)
    _count(chunk, "failed")
    return True


def chunks_cancel(
    *, chunks: QuerySet[JobChunk], now: dt.datetime, error: str = ERR_CANCELLED
) -> bool:
    """Cancel the chunks of ``chunks`` that may be, and settle their deliveries: released,
    or kept as uncertain for a chunk whose request may have reached Masivo."""
    rows = list(
        chunks.filter(
            status__in=sources_of(JobChunk.TRANSITIONS, ChunkStatus.CANCELLED)
        ).values_list("pk", "may_have_arrived")
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
    first = job.chunk_count + 1
    JobChunk.objects.bulk_create(
        [
            JobChunk(
                job_id=job.pk,
                sequence=first + offset,
                parent=chunk,
                endpoint=chunk.endpoint,
                phase=chunk.phase,
                may_have_arrived=chunk.may_have_arrived,
                booked_at=chunk.booked_at,
                not_before=now,
                **part,
            )
            for offset, part in enumerate(_halves(chunk))
        ]
    )
    for half_chunk in JobChunk.objects.filter(job_id=job.pk, sequence__in=[first, first + 1]):
        if chunk.is_history:
            transaction_deliveries_move(from_chunk_id=chunk.pk, to_chunk=half_chunk)
        else:
            deliveries_move(from_chunk_id=chunk.pk, to_chunk=half_chunk)
    MigrationJob.objects.filter(pk=job.pk).update(chunk_count=first + 1)
    job.chunk_count = first + 1
    return True


def _halves(chunk: JobChunk) -> list[dict]:
    """The fields that differ between the two halves of a refused chunk."""
    if chunk.is_history:
        return [
            {"item_ids": ids, "item_count": len(ids), "customer_count": customers}
            for ids, customers in history_halves(chunk)
        ]
    ids = list(chunk.customer_ids)
    half = math.ceil(len(ids) / 2)
    return [
        {"customer_ids": part, "customer_count": len(part)} for part in (ids[:half], ids[half:])
    ]


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


def _retry_delay_s(*, chunk: JobChunk, retry_after_s: float | None) -> float:
    """How long a chunk waits before its next attempt: its backoff, or Retry-After."""
    delay = backoff_delay(
        attempt=max(1, chunk.attempts),
        base=settings.MIGRATION_BACKOFF_BASE_S,
        cap=settings.MIGRATION_BACKOFF_MAX_S,
    )
    return max(delay, retry_after_s or 0.0)


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
    for an operator when its outcome is unknown and ``MIGRATION_UNKNOWN_OUTCOME`` says so,
    or the chunk carries transactions (Masivo takes a customer's transactions once).
    """
    if is_unknown:
        chunk.may_have_arrived = True
        chunks.update(may_have_arrived=True)
    if job.status == JobStatus.CANCELLED:
        chunks_cancel(chunks=chunks, now=now)
        return ChunkStatus.CANCELLED
    if is_unknown and holds_unknown_outcomes(chunk.endpoint):
        chunk_hold(chunk=chunk, chunks=chunks, error=error)
        return ChunkStatus.HELD
    if chunk.attempts >= settings.MIGRATION_MAX_ATTEMPTS:
        chunk_fail(
            chunk=chunk,
            chunks=chunks,
            error=ERR_GAVE_UP % {"attempts": chunk.attempts, "error": error},
            now=now,
            is_permanent=False,
        )
        return ChunkStatus.FAILED
    delay = _retry_delay_s(chunk=chunk, retry_after_s=retry_after_s)
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
        if expired or lease_owner_is_dead(chunk.lease_owner):
            released += _release(job=job, chunk=chunk, now=now)
    if released:
        logger.warning("Job #%s: took back %s chunk(s) whose worker stopped", job.pk, released)
    return released


def _release(*, job: MigrationJob, chunk: JobChunk, now: dt.datetime) -> int:
    """Take back one chunk whose worker is gone (see ``chunks_release_expired``)."""
    still_held = JobChunk.objects.filter(
        pk=chunk.pk,
        status=ChunkStatus.SENDING,
        lease_owner=chunk.lease_owner,
        lease_version=chunk.lease_version,
    )
    if job.status == JobStatus.CANCELLED:
        return int(chunks_cancel(chunks=still_held, now=now))
    if chunk.request_left_at is None:
        # Booked at most, never sent: safe to send by anyone, at once.
        return chunks_transition(
            chunks=still_held, to=ChunkStatus.PENDING, not_before=now, **LEASE_CLEARED
        )
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
    return 1
