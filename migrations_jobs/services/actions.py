"""What operators do to a job once it runs or has ended: cancel, retry failed chunks,
resume, decide on chunks held with an unknown outcome, and send customers again."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from console.errors import InvalidInput, NotPermitted
from console.types import Operator
from customers.contract import MAX_CUSTOMERS_PER_REQUEST
from customers.models import Outcome, StagedCustomer, StagingBatch
from customers.services import (
    BatchStateError,
    customers_outcome_transition,
    customers_resend_mark,
    customers_set_resend,
)
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob, SendAgain
from migrations_jobs.scheduling import job_run_enqueue
from migrations_jobs.selectors import job_failed_chunks, job_is_stalled
from migrations_jobs.services.base import (
    CANCEL_PERMISSION,
    ERR_CANCEL_PERMISSION,
    ERR_NOT_RESUMABLE,
    ERR_NOTHING_HELD,
    ERR_NOTHING_TO_RETRY,
    ERR_RETRY_CANNOT_HELP,
    ERR_RETRY_PERMISSION,
    ERR_SEND_AGAIN_APPROVED,
    ERR_SEND_AGAIN_NONE,
    ERR_SEND_AGAIN_PERMISSION,
    ERR_SEND_AGAIN_REASON,
    RETRY_PERMISSION,
    SEND_AGAIN_PERMISSION,
    ChunkStatus,
    JobStateError,
    JobStatus,
    job_transition,
    max_in_flight,
    transition_error,
)
from migrations_jobs.services.chunks import (
    chunk_succeed,
    chunks_cancel,
    chunks_release_expired,
)
from migrations_jobs.services.jobs import job_finish_if_done
from migrations_jobs.services.leases import lease_owner_is_dead, lease_s
from migrations_jobs.services.phases import job_history_replan

logger = logging.getLogger("migrations_jobs")

REASON_CHARS = 1000


def _runs_enqueue(*, job_id: int, chunks: int) -> None:
    for _runner in range(min(max_in_flight(), chunks)):
        job_run_enqueue(job_id=job_id)


def _job_restart(*, job: MigrationJob) -> None:
    """An ended or held job has chunks to send again: it runs again."""
    if job.status != JobStatus.RUNNING:
        job_transition(
            pk=job.pk,
            to=JobStatus.RUNNING,
            expected=MigrationJob.RESTARTABLE_STATUSES,
            finished_at=None,
        )


def job_cancel(*, job: MigrationJob, user: Operator) -> MigrationJob:
    """Stop a job: no new request starts, pending, waiting and held chunks are cancelled,
    requests in flight finish and are recorded. Customers not sent stay ``not_sent``."""
    if not user.has_perm(CANCEL_PERMISSION):
        raise NotPermitted(ERR_CANCEL_PERMISSION)
    now = timezone.now()
    with transaction.atomic():
        locked = MigrationJob.objects.select_for_update().get(pk=job.pk)
        if not job_transition(
            pk=locked.pk,
            to=JobStatus.CANCELLED,
            cancelled_by=user,
            finished_at=now,
            wake_at=None,
            wake_token="",
        ):
            raise transition_error(job=locked, to=JobStatus.CANCELLED)
        chunks_cancel(
            chunks=JobChunk.objects.filter(
                job_id=locked.pk,
                status__in=(ChunkStatus.PENDING, ChunkStatus.WAITING, ChunkStatus.HELD),
            ),
            now=now,
        )
    job.refresh_from_db()
    logger.info("Job #%s cancelled by %s", job.pk, user)
    return job


def job_retry_failed(*, job: MigrationJob, user: Operator) -> MigrationJob:
    """Send the failed chunks of a job again: each gets a new pending chunk with the same
    customers (back to ``not_sent``), and the job runs again. Chunks Masivo refused for
    good (``is_permanent``) stay failed: the same body would be refused again. The history
    the job left out for those customers is planned again, after them."""
    if not user.has_perm(RETRY_PERMISSION):
        raise NotPermitted(ERR_RETRY_PERMISSION)
    now = timezone.now()
    with transaction.atomic():
        locked = MigrationJob.objects.select_for_update().get(pk=job.pk)
        if locked.status not in MigrationJob.RESTARTABLE_STATUSES:
            raise transition_error(job=locked, to=JobStatus.RUNNING)
        failed = list(job_failed_chunks(job_id=locked.pk, may_retry=True).order_by("sequence"))
        if not failed:
            refused = job_failed_chunks(job_id=locked.pk, may_retry=False).exists()
            message = ERR_RETRY_CANNOT_HELP if refused else ERR_NOTHING_TO_RETRY
            raise JobStateError(message % {"job": locked.pk}, code="nothing")
        first = locked.chunk_count + 1
        JobChunk.objects.bulk_create(
            [
                JobChunk(
                    job_id=locked.pk,
                    sequence=first + offset,
                    parent=chunk,
                    endpoint=chunk.endpoint,
                    phase=chunk.phase,
                    customer_ids=chunk.customer_ids,
                    customer_count=chunk.customer_count,
                    item_ids=chunk.item_ids,
                    item_count=chunk.item_count,
                    may_have_arrived=chunk.may_have_arrived,
                    not_before=now,
                )
                for offset, chunk in enumerate(failed)
            ],
            batch_size=100,
        )
        for chunk in failed:
            customers_outcome_transition(customer_ids=chunk.customer_ids, to=Outcome.NOT_SENT)
        history = job_history_replan(
            job=locked,
            customer_ids=[pk for chunk in failed for pk in chunk.customer_ids],
            first_sequence=first + len(failed),
            now=now,
        )
        unknown = sum(chunk.last_outcome in ChunkAttempt.UNKNOWN_OUTCOMES for chunk in failed)
        failed_counts: dict[str, int] = defaultdict(int)
        for chunk in failed:
            counter, amount = chunk.tally("failed")
            failed_counts[counter] += amount
        MigrationJob.objects.filter(pk=locked.pk).update(
            **{counter: F(counter) - amount for counter, amount in failed_counts.items()},
            chunk_count=locked.chunk_count + len(failed) + len(history),
            retried_unknown_count=F("retried_unknown_count") + unknown,
        )
        _job_restart(job=locked)
        _runs_enqueue(job_id=locked.pk, chunks=len(failed))
    job.refresh_from_db()
    logger.info("Job #%s: %s failed chunk(s) retried by %s", job.pk, len(failed), user)
    return job


def job_needs_resume(*, job: MigrationJob, now: dt.datetime | None = None) -> bool:
    """True when an active job has work that no live worker holds, so that resuming it
    helps: a chunk in flight whose lease ran out or whose worker process is gone, or no
    chunk in flight and no sign of a worker for a lease's length (no claim, no request,
    no wake-up due: ``selectors.job_is_stalled``). A job a worker is sending, or between
    two requests of, does not need it. The admin offers "Resume" and the API answers
    ``needs_resume`` by this rule."""
    if not job.is_active:
        return False
    now = now or timezone.now()
    in_flight = JobChunk.objects.filter(job_id=job.pk, status=ChunkStatus.SENDING)
    for expires_at, owner in in_flight.values_list("lease_expires_at", "lease_owner"):
        if expires_at is None or expires_at <= now or lease_owner_is_dead(owner):
            return True
    return job_is_stalled(job=job, now=now, stall_s=lease_s())


def job_resume(*, job: MigrationJob, user: Operator) -> MigrationJob:
    """Get a job going again after its worker died: chunks whose worker is gone go back
    to pending, and the job's task is enqueued again."""
    if not user.has_perm(RETRY_PERMISSION):
        raise NotPermitted(ERR_RETRY_PERMISSION)
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
        job_run_enqueue(job_id=locked.pk)
    job_finish_if_done(job_id=job.pk)
    job.refresh_from_db()
    logger.info("Job #%s resumed by %s", job.pk, user)
    return job


# --- chunks held with an unknown outcome -----------------------------------------------------


def _held_chunks(*, job: MigrationJob, user: Operator) -> tuple[MigrationJob, list[JobChunk]]:
    """Lock the job (inside the caller's transaction) and read its held chunks."""
    if not user.has_perm(RETRY_PERMISSION):
        raise NotPermitted(ERR_RETRY_PERMISSION)
    locked = MigrationJob.objects.select_for_update().get(pk=job.pk)
    held = list(JobChunk.objects.filter(job_id=locked.pk, status=ChunkStatus.HELD))
    if not held:
        raise JobStateError(ERR_NOTHING_HELD % {"job": locked.pk}, code="nothing")
    return locked, held


def job_held_resend(*, job: MigrationJob, user: Operator) -> MigrationJob:
    """Send again the chunks held with an unknown outcome: the operator checked Masivo and
    found the customers missing (or accepts that they may arrive twice)."""
    now = timezone.now()
    with transaction.atomic():
        locked, held = _held_chunks(job=job, user=user)
        moved = JobChunk.objects.filter(pk__in=[c.pk for c in held]).update(
            status=ChunkStatus.PENDING,
            not_before=now,
            unknown_outcome_retries=F("unknown_outcome_retries") + 1,
        )
        MigrationJob.objects.filter(pk=locked.pk).update(
            retried_unknown_count=F("retried_unknown_count") + moved
        )
        _job_restart(job=locked)
        _runs_enqueue(job_id=locked.pk, chunks=moved)
    job.refresh_from_db()
    logger.info("Job #%s: %s held chunk(s) sent again by %s", job.pk, moved, user)
    return job


def job_held_mark_arrived(*, job: MigrationJob, user: Operator) -> MigrationJob:
    """Count the held chunks as sent: the operator found their customers in Masivo."""
    now = timezone.now()
    with transaction.atomic():
        _locked, held = _held_chunks(job=job, user=user)
        for chunk in held:
            chunk_succeed(
                chunk=chunk,
                chunks=JobChunk.objects.filter(pk=chunk.pk, status=ChunkStatus.HELD),
                now=now,
                maybe_twice=chunk.unknown_outcome_retries > 0,
            )
    job_finish_if_done(job_id=job.pk)
    job.refresh_from_db()
    logger.info("Job #%s: %s held chunk(s) marked arrived by %s", job.pk, len(held), user)
    return job


# --- send again ------------------------------------------------------------------------------


def _send_again_check(*, user: Operator, reason: str) -> str:
    if not user.has_perm(SEND_AGAIN_PERMISSION):
        raise NotPermitted(ERR_SEND_AGAIN_PERMISSION)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(ERR_SEND_AGAIN_REASON, code="reason")
    return reason[:REASON_CHARS]


def customers_send_again(
    *, batch: StagingBatch, customer_ids: list[int], reason: str, user: Operator
) -> SendAgain:
    """Send chosen customers of ``batch`` again although the console already sent their
    ids (by this batch or another) or skipped them; recorded with the reason.

    A batch not yet approved only marks them: its job takes their deliveries over. A
    submitted batch's job gets new chunks for the ones sent or skipped, and runs again.
    Needs the permission to approve batches.
    """
    reason = _send_again_check(user=user, reason=reason)
    if batch.status == StagingBatch.Status.APPROVED:
        raise BatchStateError(ERR_SEND_AGAIN_APPROVED % {"batch": batch.name}, code="state")
    if batch.status != StagingBatch.Status.SUBMITTED:
        ids = list(
            StagedCustomer.objects.filter(batch=batch, pk__in=customer_ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        with transaction.atomic():
            customers_set_resend(batch=batch, customer_ids=ids, resend=True, user=user)
            record = SendAgain.objects.create(
                batch=batch,
                requested_by=user,
                reason=reason,
                customer_count=len(ids),
                customer_ids=ids,
            )
        logger.info("Batch %s: %s customers to send again, by %s", batch.pk, len(ids), user)
        return record
    with transaction.atomic():
        record = _send_again_submitted(
            batch=batch, customer_ids=customer_ids, reason=reason, user=user
        )
    logger.info(
        "Job #%s: %s customers sent again by %s", record.job_id, record.customer_count, user
    )
    return record


def _send_again_submitted(
    *, batch: StagingBatch, customer_ids: list[int], reason: str, user: Operator
) -> SendAgain:
    job = MigrationJob.objects.select_for_update().filter(batch=batch).order_by("-pk").first()
    if job is None or job.status not in MigrationJob.RESTARTABLE_STATUSES:
        raise JobStateError(ERR_SEND_AGAIN_NONE % {"batch": batch.name}, code="nothing")
    chosen = StagedCustomer.objects.filter(
        batch=batch, pk__in=customer_ids, outcome__in=(Outcome.SENT, Outcome.SKIPPED)
    )
    counts = chosen.aggregate(
        sent=Count("pk", filter=Q(outcome=Outcome.SENT)),
        skipped=Count("pk", filter=Q(outcome=Outcome.SKIPPED)),
    )
    ids = list(chosen.order_by("pk").values_list("pk", flat=True))
    if not ids:
        raise JobStateError(ERR_SEND_AGAIN_NONE % {"batch": batch.name}, code="nothing")
    customers_resend_mark(customer_ids=ids)
    customers_outcome_transition(customer_ids=ids, to=Outcome.NOT_SENT)
    now = timezone.now()
    size = min(int(settings.MIGRATION_CHUNK_SIZE), MAX_CUSTOMERS_PER_REQUEST)
    parts = [ids[start : start + size] for start in range(0, len(ids), size)]
    JobChunk.objects.bulk_create(
        [
            JobChunk(
                job_id=job.pk,
                sequence=job.chunk_count + 1 + offset,
                customer_ids=part,
                customer_count=len(part),
                not_before=now,
            )
            for offset, part in enumerate(parts)
        ],
        batch_size=100,
    )
    MigrationJob.objects.filter(pk=job.pk).update(
        sent_customers=F("sent_customers") - counts["sent"],
        skipped_customers=F("skipped_customers") - counts["skipped"],
        chunk_count=F("chunk_count") + len(parts),
    )
    _job_restart(job=job)
    _runs_enqueue(job_id=job.pk, chunks=len(parts))
    return SendAgain.objects.create(
        batch=batch,
        job=job,
        requested_by=user,
        reason=reason,
        customer_count=len(ids),
        customer_ids=ids,
    )
