"""Jobs as a whole: start, run, finish, wake-ups, the sweep. (Operators' actions on a
running or ended job are in ``actions``.)"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from console.errors import NotPermitted
from console.types import Operator
from customers.models import StagingBatch
from customers.payload import batch_chunks
from customers.services import BatchStateError, batch_transition
from migrations_jobs.client import MasivoClient, redact
from migrations_jobs.models import Endpoint, JobChunk, MigrationJob
from migrations_jobs.scheduling import job_run_enqueue
from migrations_jobs.selectors import job_is_stalled, job_next_wake_in
from migrations_jobs.services.base import (
    CLAIM_RETRY_S,
    ERR_CHANGED_SINCE_APPROVAL,
    ERR_NOT_APPROVED,
    ERR_NOTHING_TO_SEND,
    ERR_SUBMIT_PERMISSION,
    RUN_BUDGET_S,
    SLEEP_MAX_S,
    SUBMIT_PERMISSION,
    WAKE_EARLY_S,
    WAKE_MAX_S,
    ChunkStatus,
    JobStatus,
    job_transition,
    max_in_flight,
)
from migrations_jobs.services.chunks import chunks_release_expired
from migrations_jobs.services.leases import lease_owner_is_dead, lease_s
from migrations_jobs.services.phases import job_history_plan, job_phase_open
from migrations_jobs.services.sending import chunk_claim, chunk_send

logger = logging.getLogger("migrations_jobs")


def settings_snapshot() -> dict:
    """The settings that shape a job, for its record. Never a secret."""
    return {
        "chunk_size": settings.MIGRATION_CHUNK_SIZE,
        "min_interval_s": settings.MIGRATION_MIN_INTERVAL_S,
        "hourly_cap": settings.MIGRATION_HOURLY_CAP,
        "max_attempts": settings.MIGRATION_MAX_ATTEMPTS,
        "backoff_base_s": settings.MIGRATION_BACKOFF_BASE_S,
        "backoff_max_s": settings.MIGRATION_BACKOFF_MAX_S,
        "lease_s": settings.MIGRATION_LEASE_S,
        "unknown_outcome": settings.MIGRATION_UNKNOWN_OUTCOME,
        "max_in_flight": settings.MIGRATION_MAX_IN_FLIGHT,
        "read_timeout_s": settings.MASIVO_READ_TIMEOUT_S,
        "total_timeout_s": settings.MASIVO_TOTAL_TIMEOUT_S,
        "base_url": redact(settings.MASIVO_BASE_URL),
    }


def job_start(*, batch: StagingBatch, user: Operator) -> MigrationJob:
    """Submit an approved batch: create its job and chunks, move the batch to submitted,
    and enqueue the job's tasks once all of that is committed.

    Refused unless ``user`` may submit, the batch is approved, and what it would send is
    exactly what was approved (the version of its staged data, ``customers.versioning``).
    """
    if not user.has_perm(SUBMIT_PERMISSION):
        raise NotPermitted(ERR_SUBMIT_PERMISSION)
    now = timezone.now()
    with transaction.atomic():
        locked = StagingBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status != StagingBatch.Status.APPROVED:
            raise BatchStateError(
                ERR_NOT_APPROVED
                % {"batch": locked.name, "status": locked.get_status_display().lower()},
                code="state",
            )
        # The database moves the version on any change to the batch's staged rows
        # (customers.versioning): equal, the rows are exactly those approved.
        if locked.content_version != locked.approved_version:
            raise BatchStateError(
                ERR_CHANGED_SINCE_APPROVAL % {"batch": locked.name}, code="changed"
            )
        job = MigrationJob.objects.create(
            batch=locked, started_by=user, settings_used=settings_snapshot()
        )
        chunks = [
            JobChunk(
                job=job, sequence=number, customer_ids=ids, customer_count=len(ids), not_before=now
            )
            for number, ids in enumerate(batch_chunks(batch=locked), start=1)
        ]
        history = job_history_plan(
            job=job, first_sequence=len(chunks) + 1, now=now, waiting=bool(chunks)
        )
        if not chunks and not history:
            raise BatchStateError(ERR_NOTHING_TO_SEND % {"batch": locked.name}, code="empty")
        JobChunk.objects.bulk_create([*chunks, *history], batch_size=500)
        MigrationJob.objects.filter(pk=job.pk).update(
            total_customers=sum(chunk.customer_count for chunk in chunks),
            total_transactions=_rows(history, Endpoint.TRANSACTIONS),
            total_events=_rows(history, Endpoint.EVENTS),
            chunk_count=len(chunks) + len(history),
        )
        job.refresh_from_db()
        batch_transition(pk=locked.pk, to=StagingBatch.Status.SUBMITTED, expected=(locked.status,))
        for _runner in range(min(max_in_flight(), len(chunks) or len(history))):
            job_run_enqueue(job_id=job.pk)
    batch.refresh_from_db()
    logger.info(
        "Job #%s started for batch %s: %s customers, %s transactions and %s events in %s chunks",
        job.pk,
        batch.pk,
        job.total_customers,
        job.total_transactions,
        job.total_events,
        job.chunk_count,
    )
    return job


def _rows(chunks: list[JobChunk], endpoint: str) -> int:
    return sum(chunk.item_count for chunk in chunks if chunk.endpoint == endpoint)


def job_process(
    *,
    job_id: int,
    worker: str,
    budget_s: float = RUN_BUDGET_S,
    client: MasivoClient | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> float | None:
    """Claim and send the job's chunks one after another for up to ``budget_s``, or until
    ``should_stop`` (the worker is shutting down: a chunk waiting for its slot goes back
    to pending, a request in flight is finished and recorded).

    Returns None when this run has nothing more to do (the job ended, or is not active),
    0.0 when the budget ran out with work left (continue at once), or the seconds until
    the job's next chunk is due (continue then).
    """
    deadline = time.monotonic() + budget_s
    now = timezone.now()
    job_transition(pk=job_id, to=JobStatus.RUNNING, expected=(JobStatus.QUEUED,), started_at=now)
    if not MigrationJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).exists():
        return None
    own_client = client is None
    client = client or MasivoClient()
    try:
        while time.monotonic() < deadline:
            if should_stop():
                return 0.0
            chunk = chunk_claim(job_id=job_id, worker=worker)
            if chunk is None:
                if not MigrationJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).exists():
                    return None
                delay = job_next_wake_in(job_id=job_id)
                if delay is None:
                    job_finish_if_done(job_id=job_id)
                    if not MigrationJob.objects.filter(
                        pk=job_id, status=JobStatus.RUNNING
                    ).exists():
                        return None
                    continue  # the next phase opened
                delay = max(delay, CLAIM_RETRY_S)
                if delay > SLEEP_MAX_S or time.monotonic() + delay >= deadline:
                    return delay
                time.sleep(delay)
                continue
            report = chunk_send(
                chunk_id=chunk.pk, worker=worker, client=client, should_stop=should_stop
            )
            if report.wait_s:
                return report.wait_s
        return 0.0
    finally:
        if own_client:
            client.close()


def job_finish_if_done(*, job_id: int) -> MigrationJob | None:
    """End a running job none of whose chunks is pending or sending: succeeded when no
    customer failed (skipped ones are not failures), failed when none was sent and some
    failed, partially failed otherwise; held instead while chunks whose outcome is unknown
    wait for an operator's decision. A job with a phase still waiting opens it instead
    (``phases.job_phase_open``) and runs on: a run is scheduled for when it is due."""
    now = timezone.now()
    with transaction.atomic():
        job = MigrationJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status not in (JobStatus.RUNNING, JobStatus.HELD):
            return job
        if job.chunks.filter(status__in=JobChunk.OPEN_STATUSES).exists():
            return job
        if job.chunks.filter(status=ChunkStatus.HELD).exists():
            if job.status == JobStatus.RUNNING:
                job_transition(
                    pk=job_id,
                    to=JobStatus.HELD,
                    expected=(JobStatus.RUNNING,),
                    wake_at=None,
                    wake_token="",
                )
                logger.warning("Job #%s waits for a decision on chunks of unknown outcome", job_id)
            return job
        due_in = job_phase_open(job_id=job_id, now=now)
        if due_in is not None:
            if job.status == JobStatus.HELD:
                job_transition(pk=job_id, to=JobStatus.RUNNING, expected=(JobStatus.HELD,))
            job_wake_schedule(job_id=job_id, delay_s=due_in)
            logger.info("Job #%s: next phase due in %.1f s", job_id, due_in)
            return job
        job_transition(
            pk=job_id,
            to=job_end_status(job),
            expected=(JobStatus.RUNNING, JobStatus.HELD),
            finished_at=now,
            wake_at=None,
            wake_token="",
        )
    job.refresh_from_db()
    logger.info(
        "Job #%s %s: %s sent, %s skipped, %s failed of %s",
        job.pk,
        job.status,
        job.sent_customers,
        job.skipped_customers,
        job.failed_customers,
        job.total_customers,
    )
    return job


def job_end_status(job: MigrationJob) -> str:
    """How a job with nothing left to send ended, from its counts (customers, and rows of
    their history)."""
    failed = job.failed_customers + job.failed_transactions + job.failed_events
    if not failed:
        return JobStatus.SUCCEEDED
    if not (job.sent_customers + job.sent_transactions + job.sent_events):
        return JobStatus.FAILED
    return JobStatus.PARTIALLY_FAILED


def job_wake_schedule(*, job_id: int, delay_s: float) -> bool:
    """Schedule the job's next run in ``delay_s`` unless an earlier one is already due.

    At most one wake-up task per job is valid at a time: its token is on the job, and a
    superseded task finds another token and does nothing. A wake-up that should have run
    long ago (its message was lost) counts as absent. The task is due ``WAKE_EARLY_S``
    before the work: the run sleeps the rest in the worker, on time, where a broker's
    countdown may be late (a request late for its slot pushes every later one back).
    """
    delay_s = min(max(0.0, delay_s - WAKE_EARLY_S), WAKE_MAX_S)
    now = timezone.now()
    at = now + dt.timedelta(seconds=delay_s)
    stale = now - dt.timedelta(seconds=lease_s())
    token = uuid.uuid4().hex
    with transaction.atomic():
        scheduled = MigrationJob.objects.filter(
            Q(wake_token="") | Q(wake_at__isnull=True) | Q(wake_at__gt=at) | Q(wake_at__lt=stale),
            pk=job_id,
            status__in=MigrationJob.ACTIVE_STATUSES,
        ).update(wake_at=at, wake_token=token)
        if scheduled:
            job_run_enqueue(job_id=job_id, wake=token, countdown=delay_s)
    return bool(scheduled)


def job_wake_take(*, job_id: int, token: str) -> bool:
    """Consume the job's wake-up token: True for the one valid wake-up task."""
    return bool(
        MigrationJob.objects.filter(pk=job_id, wake_token=token).update(wake_token="", wake_at=None)
    )


def jobs_sweep(*, takeover: bool = False) -> list[int]:
    """Keep every active job moving; returns the ids of the jobs a run was enqueued for.

    Takes back chunks whose worker is gone (lease expired, or a process of this host that
    no longer exists) and gives their jobs a run at once; ends jobs with nothing left to
    send; enqueues a run for each active job that shows no sign of life (no live lease, no
    recent claim, no wake-up due). With ``takeover`` (a worker just started, so the tasks
    a dead worker held may be lost), every active job gets a fresh run.
    """
    now = timezone.now()
    expired_jobs = {
        job_id
        for job_id, expires_at, owner in JobChunk.objects.filter(
            status=ChunkStatus.SENDING
        ).values_list("job_id", "lease_expires_at", "lease_owner")
        if expires_at is None or expires_at <= now or lease_owner_is_dead(owner)
    }
    # Jobs whose worker was just found gone get a run at once, whatever their heartbeat.
    orphaned: set[int] = set()
    for job_id in sorted(expired_jobs):
        with transaction.atomic():
            job = MigrationJob.objects.select_for_update().get(pk=job_id)
            if chunks_release_expired(job=job, now=now):
                orphaned.add(job_id)
    revived: list[int] = []
    for job in MigrationJob.objects.filter(status__in=MigrationJob.ACTIVE_STATUSES).order_by("pk"):
        if (
            job.status == JobStatus.RUNNING
            and not job.chunks.filter(status__in=JobChunk.OPEN_STATUSES).exists()
        ):
            job_finish_if_done(job_id=job.pk)
            continue
        if takeover or job.pk in orphaned:
            MigrationJob.objects.filter(pk=job.pk).update(
                heartbeat_at=now, wake_at=None, wake_token=""
            )
        elif not job_is_stalled(job=job, now=now, stall_s=lease_s()):
            continue
        elif not MigrationJob.objects.filter(
            Q(heartbeat_at=job.heartbeat_at) if job.heartbeat_at else Q(heartbeat_at__isnull=True),
            pk=job.pk,
        ).update(heartbeat_at=now):
            continue  # another sweep revived it first
        job_run_enqueue(job_id=job.pk)
        revived.append(job.pk)
    if revived:
        logger.info("Sweep enqueued runs for jobs %s", revived)
    return revived
