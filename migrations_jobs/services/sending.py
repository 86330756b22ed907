"""Claiming a chunk and sending it: the only place a request to Masivo starts."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from customers.payload import customers_body
from customers.payload.history import history_body
from migrations_jobs.client import SEND_ERRORS, MasivoAuthError, MasivoClient, SendFenced
from migrations_jobs.models import JobChunk, MigrationJob
from migrations_jobs.pacing import Booking, DepartureLag, pacing_note_answer, pacing_reserve
from migrations_jobs.services.base import (
    CLAIM_RETRY_S,
    LEASE_CLEARED,
    SLEEP_MAX_S,
    ChunkStatus,
    JobStatus,
    chunks_transition,
    max_in_flight,
)
from migrations_jobs.services.chunks import chunks_cancel, chunks_release_expired
from migrations_jobs.services.deliveries import chunk_book
from migrations_jobs.services.leases import Fence, Lease, LeaseKeeper, lease_until
from migrations_jobs.services.outcomes import Answer, chunk_record
from migrations_jobs.services.phases import history_chunk_book

logger = logging.getLogger("migrations_jobs")
# How often a pacing wait looks whether the worker is stopping.
STOP_CHECK_S = 0.1
# This process's lag between handing a request to the client and its leaving.
_departure_lag = DepartureLag()


# A claim books at most this many chunks whose customers all turn out to be skipped
# before it answers (the next claim goes on), so one claim's transaction stays short.
CLAIM_BOOKINGS_MAX = 5


def chunk_claim(*, job_id: int, worker: str, now: dt.datetime | None = None) -> JobChunk | None:
    """Lease the job's next due chunk to ``worker``, or None.

    None when the job is not running, when ``MIGRATION_MAX_IN_FLIGHT`` of its chunks are
    already being sent, or when no chunk is due. Chunks whose lease expired (or whose
    worker is gone) go back to pending first (see ``chunks_release_expired``). The first
    claim of a chunk books its customers' deliveries (see ``deliveries.chunk_book``): a
    chunk left with no customer to send is skipped, and the next due one is tried.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # The job's row lock serialises the claims of one job: the in-flight count is exact.
        job = MigrationJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != JobStatus.RUNNING:
            return None
        chunks_release_expired(job=job, now=now)
        MigrationJob.objects.filter(pk=job_id).update(heartbeat_at=now)
        in_flight = JobChunk.objects.filter(job_id=job_id, status=ChunkStatus.SENDING).count()
        if in_flight >= max_in_flight():
            return None
        for _booking in range(CLAIM_BOOKINGS_MAX):
            candidate = _due_chunk(job_id=job_id, now=now)
            if candidate is None:
                return None
            if candidate.booked_at is None and not _book(job=job, chunk=candidate, now=now):
                chunks_transition(
                    chunks=JobChunk.objects.filter(pk=candidate.pk),
                    to=ChunkStatus.SKIPPED,
                    finished_at=now,
                )
                continue
            if chunks_transition(
                chunks=JobChunk.objects.filter(pk=candidate.pk, status=ChunkStatus.PENDING),
                to=ChunkStatus.SENDING,
                lease_owner=worker,
                lease_version=F("lease_version") + 1,
                lease_expires_at=lease_until(now),
                request_started_at=None,
                request_left_at=None,
            ):
                return JobChunk.objects.get(pk=candidate.pk)
            return None
    return None


def _book(*, job: MigrationJob, chunk: JobChunk, now: dt.datetime) -> bool:
    """A chunk's first claim books what it sends; False when nothing is left to send."""
    if chunk.is_history:
        return history_chunk_book(job=job, chunk=chunk, now=now)
    return bool(chunk_book(job=job, chunk=chunk, now=now).kept)


def _due_chunk(*, job_id: int, now: dt.datetime) -> JobChunk | None:
    """The job's next due pending chunk: an earlier phase first (a customers chunk retried
    while the history is being sent goes before it), then in order."""
    due = JobChunk.objects.filter(
        job_id=job_id, status=ChunkStatus.PENDING, not_before__lte=now
    ).order_by("phase", "sequence")
    if connection.features.has_select_for_update_skip_locked:
        due = due.select_for_update(skip_locked=True)
    return due.only(
        "pk", "job_id", "endpoint", "phase", "customer_ids", "item_ids", "booked_at"
    ).first()


def chunk_body(chunk: JobChunk) -> bytes:
    """The request body of ``chunk``: its customers, or its transactions or events."""
    if chunk.is_history:
        return history_body(kind=chunk.endpoint, row_ids=chunk.item_ids)
    return customers_body(chunk.customer_ids)


@dataclass(frozen=True)
class ChunkSendReport:
    """What ``chunk_send`` did with a chunk."""

    chunk_id: int
    # The chunk's status afterwards.
    status: str
    # The recorded attempt's outcome; "" when no request was made.
    outcome: str = ""
    # More than 0 when pacing held the chunk back: no request before that many seconds.
    wait_s: float = 0.0


class _NotSent(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def _request_begin(*, lease: Lease, job_id: int) -> Booking:
    """Book a pacing slot for the chunk's request, in one transaction.

    Returns the booking: when the request may leave, or how long pacing asks to wait
    (nothing booked then). Raises ``_NotSent`` when the worker lost the chunk, when a
    request was already booked under this lease (the same send delivered twice: a lease
    allows one request), or when the job is no longer running; the booking is then rolled
    back. The attempt counts only once the fence lets the body leave.
    """
    with transaction.atomic():
        if not MigrationJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).exists():
            raise _NotSent(ChunkStatus.CANCELLED)
        booking = pacing_reserve()
        if not booking.is_booked:
            return booking
        now = max(timezone.now(), booking.leave_at)
        if (
            not lease.chunks()
            .filter(request_started_at=None)
            .update(request_started_at=now, lease_expires_at=lease_until(now))
        ):
            raise _NotSent("")
    return booking


def _request_send(*, client: MasivoClient, body: bytes, endpoint: str, fence: Fence) -> Answer:
    started = time.monotonic()
    try:
        return Answer.from_result(client.send(body, endpoint=endpoint, may_send=fence))
    except MasivoAuthError as error:
        logger.warning("Masivo's token endpoint refused: %s", error)
        return Answer.from_auth_error(error, duration_s=time.monotonic() - started)


def _token_ready(client: MasivoClient | None) -> None:
    """Have a token at hand before a pacing slot is booked: a token fetched between the
    booking and the request would delay this request but not the next one's slot, so
    Masivo could count the two less than an interval apart (and answer 429). A failure is
    left for the request itself to meet and record."""
    try:
        if client is None:
            with MasivoClient() as own_client:
                own_client.ensure_token()
        else:
            client.ensure_token()
    except (MasivoAuthError, *SEND_ERRORS) as error:
        logger.info("No token before booking a slot: %s", type(error).__name__)


def chunk_send(
    *,
    chunk_id: int,
    worker: str,
    client: MasivoClient | None = None,
    sleep_max_s: float = SLEEP_MAX_S,
    should_stop: Callable[[], bool] = lambda: False,
) -> ChunkSendReport:
    """Send a chunk that ``worker`` claimed, and record the answer.

    The body is built and the request sent outside any transaction, while a thread keeps
    the lease (``LeaseKeeper``); the fence checks the lease immediately before the body
    leaves. Pacing waits of up to ``sleep_max_s`` are slept here; a longer wait, or
    ``should_stop`` (the worker is shutting down), puts the chunk back to pending and is
    reported in ``wait_s``, so the caller can hand over to a later task.
    """
    chunk = JobChunk.objects.get(pk=chunk_id)
    if chunk.status != ChunkStatus.SENDING or chunk.lease_owner != worker:
        return ChunkSendReport(chunk_id=chunk_id, status=chunk.status)
    lease = Lease(chunk_id=chunk_id, worker=worker, version=chunk.lease_version)
    with LeaseKeeper(lease):
        body = chunk_body(chunk)
        booking = _slot_wait(
            lease=lease,
            job_id=chunk.job_id,
            client=client,
            sleep_max_s=sleep_max_s,
            should_stop=should_stop,
        )
        if isinstance(booking, ChunkSendReport):
            return booking
        return _send_and_record(
            lease=lease,
            job_id=chunk.job_id,
            request=(chunk.endpoint, body),
            booking=booking,
            client=client,
        )


def _chunk_status(chunk_id: int) -> str:
    return JobChunk.objects.values_list("status", flat=True).get(pk=chunk_id)


def _slot_wait(
    *,
    lease: Lease,
    job_id: int,
    client: MasivoClient | None,
    sleep_max_s: float,
    should_stop: Callable[[], bool],
) -> Booking | ChunkSendReport:
    """Wait for the chunk's pacing slot: the booking, or the report of why not. A wait
    longer than ``sleep_max_s``, or the worker stopping meanwhile, gives the chunk back."""
    wait = 0.0
    while not should_stop():
        _token_ready(client)
        try:
            booking = _request_begin(lease=lease, job_id=job_id)
        except _NotSent as not_sent:
            if not_sent.status == ChunkStatus.CANCELLED:
                chunks_cancel(chunks=lease.chunks(), now=timezone.now())
            return ChunkSendReport(chunk_id=lease.chunk_id, status=_chunk_status(lease.chunk_id))
        if booking.is_booked:
            return booking
        wait = booking.wait_s
        if wait > sleep_max_s:
            break
        _pause(wait, should_stop=should_stop)
    return _give_back(lease=lease, wait_s=wait)


def _pause(seconds: float, *, should_stop: Callable[[], bool]) -> None:
    """Sleep ``seconds``, in short steps that end early when the worker stops."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0 and not should_stop():
        time.sleep(min(left, STOP_CHECK_S))


def _give_back(*, lease: Lease, wait_s: float) -> ChunkSendReport:
    """Put a chunk that did not leave back to pending, due in ``wait_s``."""
    now = timezone.now()
    deferred = chunks_transition(
        chunks=lease.chunks().filter(job__status=JobStatus.RUNNING),
        to=ChunkStatus.PENDING,
        not_before=now + dt.timedelta(seconds=wait_s),
        **LEASE_CLEARED,
    )
    if not deferred:
        # Cancelled meanwhile (or the lease was lost): nothing left to wait for.
        chunks_cancel(chunks=lease.chunks(), now=now)
        return ChunkSendReport(chunk_id=lease.chunk_id, status=_chunk_status(lease.chunk_id))
    return ChunkSendReport(
        chunk_id=lease.chunk_id, status=ChunkStatus.PENDING, wait_s=max(wait_s, CLAIM_RETRY_S)
    )


def _send_and_record(
    *,
    lease: Lease,
    job_id: int,
    request: tuple[str, bytes],
    booking: Booking,
    client: MasivoClient | None,
) -> ChunkSendReport:
    """Send the chunk's ``(endpoint, body)`` on its booked slot and record the answer."""
    chunk_id = lease.chunk_id
    endpoint, body = request
    # The slot was booked a moment before it opens (pacing.LEAD_S): leave on it.
    early_s = (booking.leave_at - timezone.now()).total_seconds() - _departure_lag.estimate_s()
    if early_s > 0:
        time.sleep(early_s)
    fence = Fence(lease=lease, job_id=job_id)
    started_at = timezone.now()
    try:
        if client is None:
            with MasivoClient() as own_client:
                answer = _request_send(client=own_client, body=body, endpoint=endpoint, fence=fence)
        else:
            answer = _request_send(client=client, body=body, endpoint=endpoint, fence=fence)
    except SendFenced:
        # The lease was lost before the body left: whoever holds the chunk now sends it.
        return ChunkSendReport(chunk_id=chunk_id, status=_chunk_status(chunk_id))
    answered_at = timezone.now()
    _departure_lag.note(handed_at=started_at, left_at=answer.left_at)
    status = chunk_record(
        lease=lease,
        answer=answer,
        started_at=fence.left_at or started_at,
        left=fence.left_at is not None,
    )
    left_at = answer.left_at
    if left_at is None and answer.status_code is not None:
        # Answered, so it left; the transport did not say when (no connection trace).
        left_at = fence.left_at or started_at
    pacing_note_answer(
        retry_after_s=answer.retry_after_s,
        ratelimit=answer.ratelimit,
        now=answered_at,
        left_at=left_at,
        status_code=answer.status_code,
    )
    return ChunkSendReport(chunk_id=chunk_id, status=status, outcome=answer.outcome)
