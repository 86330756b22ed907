"""Jobs as a whole: start, run, finish, wake-ups, the operators' actions, the sweep."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from customers.models import Outcome, StagedCustomer, StagingBatch
from customers.payload import batch_chunks, payload_fingerprint
from customers.services import BatchStateError, batch_transition
from migrations_jobs.client import MasivoClient, redact
from migrations_jobs.models import JobChunk, MigrationJob
from migrations_jobs.selectors import job_is_stalled, job_next_wake_in
from migrations_jobs.services.base import (
    CANCEL_PERMISSION,
    CLAIM_RETRY_S,
    ERR_CANCEL_PERMISSION,
    ERR_CHANGED_SINCE_APPROVAL,
    ERR_NOT_APPROVED,
    ERR_NOT_RESUMABLE,
    ERR_NOTHING_TO_RETRY,
    ERR_NOTHING_TO_SEND,
    ERR_RETRY_PERMISSION,
    ERR_SUBMIT_PERMISSION,
    RETRY_PERMISSION,
    RUN_BUDGET_S,
    SLEEP_MAX_S,
    SUBMIT_PERMISSION,
    WAKE_MAX_S,
    AttemptOutcome,
    ChunkStatus,
    JobStateError,
    JobStatus,
    job_transition,
    lease_s,
    max_in_flight,
    transition_error,
)
from migrations_jobs.services.outcomes import chunks_cancel, chunks_release_expired
from migrations_jobs.services.sending import chunk_claim, chunk_send

logger = logging.getLogger("migrations_jobs")


def enqueue_run(*, job_id: int, wake: str = "", countdown: float = 0.0) -> None:
    """Enqueue ``job_run`` once the current transaction commits (at once outside one)."""
    from migrations_jobs.tasks import job_run  # the tasks import the services

    kwargs = {"wake": wake} if wake else {}
    job_run.apply_async_on_commit(
        args=(job_id,), kwargs=kwargs, countdown=max(0.0, countdown) or None
    )


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
        "max_in_flight": settings.MIGRATION_MAX_IN_FLIGHT,
        "read_timeout_s": settings.MASIVO_READ_TIMEOUT_S,
        "total_timeout_s": settings.MASIVO_TOTAL_TIMEOUT_S,
        "base_url": redact(settings.MASIVO_BASE_URL),
    }


def job_start(*, batch: StagingBatch, user) -> MigrationJob:
    """Submit an approved batch: create its job and chunks, move the batch to submitted,
    and enqueue the job's tasks once all of that is committed.

    Refused unless ``user`` may submit, the batch is approved, and what it would send is
    exactly what was approved (its payload fingerprint).
    """
    if not user.has_perm(SUBMIT_PERMISSION):
        raise PermissionDenied(ERR_SUBMIT_PERMISSION)
    now = timezone.now()
    with transaction.atomic():
        locked = StagingBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status != StagingBatch.Status.APPROVED:
            raise BatchStateError(
                ERR_NOT_APPROVED
                % {"batch": locked.name, "status": locked.get_status_display().lower()},
                code="state",
            )
        if payload_fingerprint(batch=locked) != locked.approval_fingerprint:
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
        if not chunks:
            raise BatchStateError(ERR_NOTHING_TO_SEND % {"batch": locked.name}, code="empty")
        JobChunk.objects.bulk_create(chunks, batch_size=100)
        job.total_customers = sum(chunk.customer_count for chunk in chunks)
        job.chunk_count = len(chunks)
        job.save(update_fields=["total_customers", "chunk_count"])
        batch_transition(batch=locked, to=StagingBatch.Status.SUBMITTED, expected=(locked.status,))
        for _runner in range(min(max_in_flight(), len(chunks))):
            enqueue_run(job_id=job.pk)
    batch.refresh_from_db()
    logger.info(
        "Job #%s started for batch %s: %s customers in %s chunks",
        job.pk,
        batch.pk,
        job.total_customers,
        job.chunk_count,
    )
    return job


def job_process(
    *,
    job_id: int,
    worker: str,
    budget_s: float = RUN_BUDGET_S,
    client: MasivoClient | None = None,
) -> float | None:
    """Claim and send the job's chunks one after another for up to ``budget_s``.

    Returns None when this run has nothing more to do (the job ended, or is not active),
    0.0 when the budget ran out with work left (continue at once), or the seconds until
    the job's next chunk is due (continue then).
    """
    deadline = time.monotonic() + budget_s
    now = timezone.now()
    job_transition(
        job_id=job_id, to=JobStatus.RUNNING, expected=(JobStatus.QUEUED,), started_at=now
    )
    if not MigrationJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).exists():
        return None
    own_client = client is None
    client = client or MasivoClient()
    try:
        while time.monotonic() < deadline:
            chunk = chunk_claim(job_id=job_id, worker=worker)
            if chunk is None:
                if not MigrationJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).exists():
                    return None
                delay = job_next_wake_in(job_id=job_id)
                if delay is None:
                    job_finish_if_done(job_id=job_id)
                    return None
                delay = max(delay, CLAIM_RETRY_S)
                if delay > SLEEP_MAX_S or time.monotonic() + delay >= deadline:
                    return delay
                time.sleep(delay)
                continue
            report = chunk_send(chunk_id=chunk.pk, worker=worker, client=client)
            if report.wait_s:
                return report.wait_s
        return 0.0
    finally:
        if own_client:
            client.close()


def job_finish_if_done(*, job_id: int) -> MigrationJob | None:
    """End a running job none of whose chunks is pending or sending: succeeded when no
    customer failed, failed when none was sent, partially failed otherwise."""
    now = timezone.now()
    with transaction.atomic():
        job = MigrationJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != JobStatus.RUNNING:
            return job
        if job.chunks.filter(status__in=JobChunk.OPEN_STATUSES).exists():
            return job
        if not job.failed_customers:
            to = JobStatus.SUCCEEDED
        elif not job.sent_customers:
            to = JobStatus.FAILED
        else:
            to = JobStatus.PARTIALLY_FAILED
        job_transition(
            job_id=job_id,
            to=to,
            expected=(JobStatus.RUNNING,),
            finished_at=now,
            wake_at=None,
            wake_token="",
        )
    job.refresh_from_db()
    logger.info(
        "Job #%s %s: %s sent, %s failed of %s",
        job.pk,
        job.status,
        job.sent_customers,
        job.failed_customers,
        job.total_customers,
    )
    return job


def job_wake_schedule(*, job_id: int, delay_s: float) -> bool:
    """Schedule the job's next run in ``delay_s`` unless an earlier one is already due.

    At most one wake-up task per job is valid at a time: its token is on the job, and a
    superseded task finds another token and does nothing. A wake-up that should have run
    long ago (its message was lost) counts as absent.
    """
    delay_s = min(max(0.0, delay_s), WAKE_MAX_S)
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
            enqueue_run(job_id=job_id, wake=token, countdown=delay_s)
    return bool(scheduled)


def job_wake_take(*, job_id: int, token: str) -> bool:
    """Consume the job's wake-up token: True for the one valid wake-up task."""
    return bool(
        MigrationJob.objects.filter(pk=job_id, wake_token=token).update(wake_token="", wake_at=None)
    )


def job_cancel(*, job: MigrationJob, user) -> MigrationJob:
    """Stop a job: no new request starts, pending chunks are cancelled, requests in flight
    finish and are recorded. Customers not sent stay ``not_sent``."""
    if not user.has_perm(CANCEL_PERMISSION):
        raise PermissionDenied(ERR_CANCEL_PERMISSION)
    now = timezone.now()
    with transaction.atomic():
        locked = MigrationJob.objects.select_for_update().get(pk=job.pk)
        if not job_transition(
            job_id=locked.pk,
            to=JobStatus.CANCELLED,
            cancelled_by=user,
            finished_at=now,
            wake_at=None,
            wake_token="",
        ):
            raise transition_error(job=locked, to=JobStatus.CANCELLED)
        chunks_cancel(
            chunks=JobChunk.objects.filter(job_id=locked.pk, status=ChunkStatus.PENDING), now=now
        )
    job.refresh_from_db()
    logger.info("Job #%s cancelled by %s", job.pk, user)
    return job


def job_retry_failed(*, job: MigrationJob, user) -> MigrationJob:
    """Send the failed chunks of a job again: each gets a new pending chunk with the same
    customers (back to ``not_sent``), and the job runs again."""
    if not user.has_perm(RETRY_PERMISSION):
        raise PermissionDenied(ERR_RETRY_PERMISSION)
    now = timezone.now()
    retryable = (JobStatus.RUNNING, JobStatus.PARTIALLY_FAILED, JobStatus.FAILED)
    with transaction.atomic():
        locked = MigrationJob.objects.select_for_update().get(pk=job.pk)
        if locked.status not in retryable:
            raise transition_error(job=locked, to=JobStatus.RUNNING)
        failed = list(
            JobChunk.objects.filter(
                job_id=locked.pk, status=ChunkStatus.FAILED, children__isnull=True
            ).order_by("sequence")
        )
        if not failed:
            raise JobStateError(ERR_NOTHING_TO_RETRY % {"job": locked.pk}, code="nothing")
        first = locked.chunk_count + 1
        JobChunk.objects.bulk_create(
            [
                JobChunk(
                    job_id=locked.pk,
                    sequence=first + offset,
                    parent=chunk,
                    customer_ids=chunk.customer_ids,
                    customer_count=chunk.customer_count,
                    not_before=now,
                )
                for offset, chunk in enumerate(failed)
            ],
            batch_size=100,
        )
        for chunk in failed:
            StagedCustomer.objects.filter(pk__in=chunk.customer_ids, outcome=Outcome.FAILED).update(
                outcome=Outcome.NOT_SENT,
                outcome_at=None,
                outcome_error="",
                outcome_job_id=None,
                outcome_chunk_id=None,
            )
        unknown = sum(
            chunk.last_outcome in (AttemptOutcome.RETRY_UNKNOWN, AttemptOutcome.LEASE_EXPIRED)
            for chunk in failed
        )
        MigrationJob.objects.filter(pk=locked.pk).update(
            failed_customers=F("failed_customers") - sum(c.customer_count for c in failed),
            chunk_count=locked.chunk_count + len(failed),
            retried_unknown_count=F("retried_unknown_count") + unknown,
        )
        if locked.status != JobStatus.RUNNING:
            job_transition(
                job_id=locked.pk,
                to=JobStatus.RUNNING,
                expected=(JobStatus.PARTIALLY_FAILED, JobStatus.FAILED),
                finished_at=None,
            )
        for _runner in range(min(max_in_flight(), len(failed))):
            enqueue_run(job_id=locked.pk)
    job.refresh_from_db()
    logger.info("Job #%s: %s failed chunk(s) retried by %s", job.pk, len(failed), user)
    return job


def job_resume(*, job: MigrationJob, user) -> MigrationJob:
    """Get a job going again after its worker died: chunks whose lease expired go back to
    pending, and the job's task is enqueued again."""
    if not user.has_perm(RETRY_PERMISSION):
        raise PermissionDenied(ERR_RETRY_PERMISSION)
    now = timezone.now()
    with transaction.atomic():
        locked = MigrationJob.objects.select_for_update().get(pk=job.pk)
        if not locked.is_active:
            raise JobStateError(
                ERR_NOT_RESUMABLE
                % {"job": locked.pk, "status": locked.get_status_display().lower()},
                code="state",
            )
        chunks_release_expired(job=locked, now=now)
        MigrationJob.objects.filter(pk=locked.pk).update(
            heartbeat_at=now, wake_at=None, wake_token=""
        )
        enqueue_run(job_id=locked.pk)
    job_finish_if_done(job_id=job.pk)
    job.refresh_from_db()
    logger.info("Job #%s resumed by %s", job.pk, user)
    return job


def jobs_sweep(*, takeover: bool = False) -> list[int]:
    """Keep every active job moving; returns the ids of the jobs a run was enqueued for.

    Takes back chunks whose lease expired (all jobs), ends jobs with nothing left to send,
    and enqueues a run for each active job that shows no sign of life (no live lease, no
    recent claim, no wake-up due). With ``takeover`` (a worker just started, so the tasks
    a dead worker held may be lost), every active job gets a fresh run.
    """
    now = timezone.now()
    expired_jobs = set(
        JobChunk.objects.filter(status=ChunkStatus.SENDING, lease_expires_at__lte=now)
        .values_list("job_id", flat=True)
        .distinct()
    )
    for job_id in sorted(expired_jobs):
        with transaction.atomic():
            job = MigrationJob.objects.select_for_update().get(pk=job_id)
            chunks_release_expired(job=job, now=now)
    revived: list[int] = []
    for job in MigrationJob.objects.filter(status__in=MigrationJob.ACTIVE_STATUSES).order_by("pk"):
        if (
            job.status == JobStatus.RUNNING
            and not job.chunks.filter(status__in=JobChunk.OPEN_STATUSES).exists()
        ):
            job_finish_if_done(job_id=job.pk)
            continue
        if takeover:
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
        enqueue_run(job_id=job.pk)
        revived.append(job.pk)
    if revived:
        logger.info("Sweep enqueued runs for jobs %s", revived)
    return revived
