"""Job services called directly: start, claim and lease, send and record against the sandbox
over loopback, split, retry, cancel, resume, sweep, and the admin's actions."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from customers.models import Outcome, StagedCustomer, StagingBatch
from customers.services import BatchStateError
from migrations_jobs import services
from migrations_jobs.client import MasivoClient
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob, PacingState
from migrations_jobs.pacing import pacing_reserve
from migrations_jobs.sandbox.models import SandboxRequest
from migrations_jobs.sandbox.services import (
    sandbox_arrivals,
    sandbox_configure,
    sandbox_received_ids,
    sandbox_script,
)
from migrations_jobs.selectors import job_next_wake_in, job_progress
from migrations_jobs.services import (
    chunk_claim,
    chunk_send,
    chunks_transition,
    job_cancel,
    job_finish_if_done,
    job_process,
    job_resume,
    job_retry_failed,
    job_start,
    job_transition,
    job_wake_schedule,
    job_wake_take,
    jobs_sweep,
    leases,
)
from migrations_jobs.services.base import WAKE_EARLY_S
from tests.factories import BatchFactory, UserFactory
from tests.worker import approved_batch, broker_purge, mark_validated, validated_batch

JobStatus = MigrationJob.Status
ChunkStatus = JobChunk.Status
OPERATOR_PERMS = [
    "customers.approve_stagingbatch",
    "customers.submit_stagingbatch",
    "migrations_jobs.cancel_migrationjob",
    "migrations_jobs.retry_migrationjob",
    "migrations_jobs.view_migrationjob",
]


@pytest.fixture
def stager(db):
    return UserFactory(username="stager")


@pytest.fixture
def operator(db):
    return UserFactory(username="operator", perms=OPERATOR_PERMS)


def make_job(*, operator, stager, size: int, settings, chunk_size: int) -> MigrationJob:
    settings.MIGRATION_CHUNK_SIZE = chunk_size
    batch = approved_batch(creator=stager, approver=operator, size=size)
    return job_start(batch=batch, user=operator)


def run_to_end(job: MigrationJob, *, worker: str = "test-worker") -> MigrationJob:
    """Work the job in this process, as a worker's task would, until nothing is left."""
    for _round in range(50):
        wait = job_process(job_id=job.pk, worker=worker, budget_s=30)
        if wait is None:
            break
        time.sleep(min(wait, 2.0))
    job.refresh_from_db()
    return job


def enqueued(callbacks) -> list[tuple[str, tuple, dict]]:
    """The tasks that on-commit callbacks publish: (task name, args, kwargs)."""
    return [(c.name, c.args, c.kwargs) for c in callbacks]


def expire_lease(chunk: JobChunk) -> None:
    """As if the chunk's worker died a while ago."""
    JobChunk.objects.filter(pk=chunk.pk).update(
        lease_expires_at=timezone.now() - dt.timedelta(minutes=1)
    )


def sent_ids(batch: StagingBatch) -> set[str]:
    return set(batch.customers.filter(outcome=Outcome.SENT).values_list("legacy_id", flat=True))


# --- start -----------------------------------------------------------------------------------


def test_start_without_submit_permission_is_refused(stager, operator):
    batch = approved_batch(creator=stager, approver=operator, size=3)
    outsider = UserFactory(username="outsider", perms=["customers.approve_stagingbatch"])

    with pytest.raises(PermissionDenied, match=str(services.base.ERR_SUBMIT_PERMISSION)):
        job_start(batch=batch, user=outsider)

    batch.refresh_from_db()
    assert batch.status == StagingBatch.Status.APPROVED
    assert not MigrationJob.objects.exists()


def test_start_of_a_batch_that_is_not_approved_is_refused(stager, operator):
    batch = validated_batch(creator=stager, size=3)

    with pytest.raises(BatchStateError) as refused:
        job_start(batch=batch, user=operator)

    assert refused.value.messages == [
        services.base.ERR_NOT_APPROVED % {"batch": batch.name, "status": "validated"}
    ]
    assert not MigrationJob.objects.exists()


def test_start_of_a_batch_changed_after_approval_is_refused(stager, operator):
    batch = approved_batch(creator=stager, approver=operator, size=3)
    StagedCustomer.objects.filter(batch=batch, legacy_id="legacy-000001").update(name="Changed")

    with pytest.raises(BatchStateError) as refused:
        job_start(batch=batch, user=operator)

    assert refused.value.messages == [
        services.base.ERR_CHANGED_SINCE_APPROVAL % {"batch": batch.name}
    ]
    batch.refresh_from_db()
    assert batch.status == StagingBatch.Status.APPROVED
    assert not MigrationJob.objects.exists()


def test_start_chunks_the_valid_included_customers_in_pk_order_and_enqueues_after_commit(
    stager, operator, settings, django_capture_on_commit_callbacks
):
    settings.MIGRATION_CHUNK_SIZE = 2
    settings.MIGRATION_MAX_IN_FLIGHT = 2
    batch = validated_batch(creator=stager, size=7)
    customers = list(batch.customers.order_by("pk"))
    StagedCustomer.objects.filter(pk=customers[1].pk).update(is_valid=False)
    StagedCustomer.objects.filter(pk=customers[4].pk).update(is_excluded=True)
    from customers.services import batch_approve

    batch_approve(batch=mark_validated(batch), user=operator)

    with django_capture_on_commit_callbacks() as callbacks:
        job = job_start(batch=batch, user=operator)

    sendable = [c.pk for i, c in enumerate(customers) if i not in (1, 4)]
    chunks = list(job.chunks.order_by("sequence"))
    assert [c.customer_ids for c in chunks] == [sendable[0:2], sendable[2:4], sendable[4:5]]
    assert [c.sequence for c in chunks] == [1, 2, 3]
    assert all(c.status == ChunkStatus.PENDING for c in chunks)
    assert (job.status, job.total_customers, job.chunk_count) == (JobStatus.QUEUED, 5, 3)
    assert job.started_by == operator
    batch.refresh_from_db()
    assert batch.status == StagingBatch.Status.SUBMITTED
    # One task per chunk allowed in flight, enqueued only once the job is committed.
    assert len(callbacks) == 2
    assert enqueued(callbacks) == [("migrations_jobs.tasks.job_run", (job.pk,), {})] * 2


def test_every_sendable_customer_is_in_exactly_one_chunk_of_at_most_the_chunk_size(
    stager, operator, settings
):
    settings.MIGRATION_CHUNK_SIZE = 1000
    batch = validated_batch(creator=stager, size=2345)
    pks = list(batch.customers.order_by("pk").values_list("pk", flat=True))
    StagedCustomer.objects.filter(pk__in=pks[::7]).update(is_valid=False)
    StagedCustomer.objects.filter(pk__in=pks[3::11]).update(is_excluded=True)
    from customers.services import batch_approve

    job = job_start(batch=batch_approve(batch=mark_validated(batch), user=operator), user=operator)

    sendable = list(
        batch.customers.filter(is_valid=True, is_excluded=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    chunks = list(job.chunks.order_by("sequence"))
    sent = [pk for chunk in chunks for pk in chunk.customer_ids]
    assert sent == sendable  # each once, in pk order, none left out, none added
    assert [chunk.customer_count for chunk in chunks] == [len(c.customer_ids) for c in chunks]
    assert [len(chunk.customer_ids) for chunk in chunks[:-1]] == [1000] * (len(chunks) - 1)
    assert 0 < len(chunks[-1].customer_ids) <= 1000
    assert job.total_customers == len(sendable) == sum(c.customer_count for c in chunks)


def test_settings_used_are_recorded_without_secrets(stager, operator, settings):
    settings.MASIVO_API_KEY = "very-secret-api-key"
    settings.MASIVO_TOKEN = "very-secret-token"
    settings.MIGRATION_CHUNK_SIZE = 500
    batch = approved_batch(creator=stager, approver=operator, size=2)

    job = job_start(batch=batch, user=operator)

    assert job.settings_used["chunk_size"] == 500
    assert job.settings_used["base_url"] == settings.MASIVO_BASE_URL
    assert {"min_interval_s", "hourly_cap", "max_attempts"} <= set(job.settings_used)
    recorded = json.dumps(job.settings_used)
    assert "very-secret" not in recorded


def test_refused_start_enqueues_nothing(stager, operator, django_capture_on_commit_callbacks):
    batch = validated_batch(creator=stager, size=2)

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(BatchStateError):
        job_start(batch=batch, user=operator)

    assert callbacks == []


def test_a_batch_can_be_submitted_once(stager, operator):
    batch = approved_batch(creator=stager, approver=operator, size=2)
    job_start(batch=batch, user=operator)

    with pytest.raises(BatchStateError):
        job_start(batch=batch, user=operator)

    assert MigrationJob.objects.count() == 1


# --- state machines ------------------------------------------------------------------------


@pytest.mark.parametrize("source", JobStatus.values)
@pytest.mark.parametrize("target", JobStatus.values)
def test_job_moves_only_along_its_transitions(stager, operator, source, target):
    batch = BatchFactory(created_by=stager)
    job = MigrationJob.objects.create(batch=batch, started_by=operator, status=source)

    moved = job_transition(pk=job.pk, to=target)

    job.refresh_from_db()
    assert moved == (target in MigrationJob.TRANSITIONS[source])
    assert job.status == (target if moved else source)


@pytest.mark.parametrize("source", ChunkStatus.values)
@pytest.mark.parametrize("target", ChunkStatus.values)
def test_chunk_moves_only_along_its_transitions(stager, operator, source, target):
    batch = BatchFactory(created_by=stager)
    job = MigrationJob.objects.create(batch=batch, started_by=operator)
    chunk = JobChunk.objects.create(job=job, sequence=1, status=source, not_before=timezone.now())

    moved = chunks_transition(chunks=JobChunk.objects.filter(pk=chunk.pk), to=target)

    chunk.refresh_from_db()
    assert moved == (target in JobChunk.TRANSITIONS[source])
    assert chunk.status == (target if moved else source)


# --- claim and lease -------------------------------------------------------------------------


@pytest.fixture
def running_job(stager, operator, quick):
    job = make_job(operator=operator, stager=stager, size=10, settings=quick, chunk_size=2)
    job_transition(pk=job.pk, to=JobStatus.RUNNING)
    job.refresh_from_db()
    return job


def test_claim_leases_the_first_due_chunk(running_job, quick):
    now = timezone.now()
    JobChunk.objects.filter(job=running_job, sequence=1).update(
        not_before=now + dt.timedelta(minutes=5)
    )

    chunk = chunk_claim(job_id=running_job.pk, worker="w1", now=now)

    assert chunk.sequence == 2
    assert chunk.status == ChunkStatus.SENDING
    assert chunk.lease_owner == "w1"
    assert chunk.lease_expires_at == now + dt.timedelta(seconds=quick.MIGRATION_LEASE_S)


def test_claim_honours_the_limit_of_chunks_in_flight(running_job, quick):
    quick.MIGRATION_MAX_IN_FLIGHT = 2

    first = chunk_claim(job_id=running_job.pk, worker="w1")
    second = chunk_claim(job_id=running_job.pk, worker="w2")
    third = chunk_claim(job_id=running_job.pk, worker="w3")

    assert (first.sequence, second.sequence, third) == (1, 2, None)


def test_claim_takes_nothing_from_a_job_that_is_not_running(stager, operator, quick):
    job = make_job(operator=operator, stager=stager, size=2, settings=quick, chunk_size=1)

    assert chunk_claim(job_id=job.pk, worker="w1") is None  # still queued
    job_cancel(job=job, user=operator)
    assert chunk_claim(job_id=job.pk, worker="w1") is None


def test_expired_lease_before_the_request_left_is_taken_back_quietly(running_job, quick):
    now = timezone.now()
    lost = chunk_claim(job_id=running_job.pk, worker="dead", now=now)
    later = now + dt.timedelta(seconds=quick.MIGRATION_LEASE_S + 1)

    again = chunk_claim(job_id=running_job.pk, worker="w2", now=later)

    assert again.pk == lost.pk
    assert again.lease_owner == "w2"
    assert not ChunkAttempt.objects.exists()
    running_job.refresh_from_db()
    assert running_job.retried_unknown_count == 0


def test_expired_lease_after_the_request_left_is_a_retry_after_an_unknown_outcome(
    running_job, quick
):
    now = timezone.now()
    lost = chunk_claim(job_id=running_job.pk, worker="dead", now=now)
    # The worker's request had left when it died.
    JobChunk.objects.filter(pk=lost.pk).update(
        attempts=1, request_started_at=now, request_left_at=now
    )
    later = now + dt.timedelta(seconds=quick.MIGRATION_LEASE_S + 1)

    again = chunk_claim(job_id=running_job.pk, worker="w2", now=later)

    assert again.pk == lost.pk
    assert again.unknown_outcome_retries == 1
    attempt = ChunkAttempt.objects.get()
    assert (attempt.chunk_id, attempt.outcome, attempt.worker) == (
        lost.pk,
        ChunkAttempt.Outcome.LEASE_EXPIRED,
        "dead",
    )
    running_job.refresh_from_db()
    assert running_job.retried_unknown_count == 1


def test_expired_lease_of_the_last_attempt_fails_the_chunk(running_job, quick):
    quick.MIGRATION_MAX_ATTEMPTS = 1
    now = timezone.now()
    lost = chunk_claim(job_id=running_job.pk, worker="dead", now=now)
    JobChunk.objects.filter(pk=lost.pk).update(
        attempts=1, request_started_at=now, request_left_at=now
    )

    chunk_claim(job_id=running_job.pk, worker="w2", now=now + dt.timedelta(hours=1))

    lost.refresh_from_db()
    assert lost.status == ChunkStatus.FAILED
    errors = set(
        StagedCustomer.objects.filter(pk__in=lost.customer_ids).values_list(
            "outcome", "outcome_error"
        )
    )
    assert errors == {
        (
            Outcome.FAILED,
            services.base.ERR_GAVE_UP % {"attempts": 1, "error": services.base.ERR_LEASE_EXPIRED},
        )
    }
    running_job.refresh_from_db()
    assert running_job.failed_customers == 2
    assert running_job.retried_unknown_count == 0


def test_concurrent_claims_never_share_a_chunk(transactional_db, stager, operator, quick):
    quick.MIGRATION_MAX_IN_FLIGHT = 1000
    job = make_job(operator=operator, stager=stager, size=40, settings=quick, chunk_size=1)
    broker_purge()
    job_transition(pk=job.pk, to=JobStatus.RUNNING)
    barrier = threading.Barrier(4)
    claimed: dict[str, list[int]] = {}
    errors: list[Exception] = []

    def claim_all(worker: str) -> None:
        mine = claimed.setdefault(worker, [])
        try:
            barrier.wait(10)
            while (chunk := chunk_claim(job_id=job.pk, worker=worker)) is not None:
                mine.append(chunk.pk)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim_all, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not errors
    every = [pk for pks in claimed.values() for pk in pks]
    assert len(every) == len(set(every)) == 40
    owners = dict(JobChunk.objects.filter(job=job).values_list("pk", "lease_owner"))
    assert all(owners[pk] == worker for worker, pks in claimed.items() for pk in pks)


# --- sending against the sandbox -----------------------------------------------------------------


def test_accepted_chunks_mark_their_customers_sent_with_job_chunk_and_time(
    sandboxed, stager, operator, quick
):
    job = make_job(operator=operator, stager=stager, size=5, settings=quick, chunk_size=2)

    job = run_to_end(job)

    assert job.status == JobStatus.SUCCEEDED
    assert (job.sent_customers, job.failed_customers, job.request_count) == (5, 0, 3)
    assert job.started_at is not None
    assert job.finished_at >= job.started_at
    for chunk in job.chunks.all():
        assert chunk.status == ChunkStatus.SENT
        assert chunk.attempts == 1
        rows = StagedCustomer.objects.filter(pk__in=chunk.customer_ids)
        assert set(rows.values_list("outcome", "outcome_job_id", "outcome_chunk_id")) == {
            (Outcome.SENT, job.pk, chunk.pk)
        }
        assert all(rows.values_list("outcome_at", flat=True))
    attempt = ChunkAttempt.objects.filter(chunk__job=job).first()
    assert attempt.status_code == 201
    assert attempt.outcome == ChunkAttempt.Outcome.ACCEPTED
    assert {"limit", "remaining", "reset"} <= set(attempt.ratelimit)
    assert sandbox_received_ids() == set(job.batch.customers.values_list("legacy_id", flat=True))


def test_refused_customer_is_isolated_by_halving(sandboxed, stager, operator, quick):
    job = make_job(operator=operator, stager=stager, size=8, settings=quick, chunk_size=8)
    sandbox_configure(reject_ids=["legacy-000005"])

    job = run_to_end(job)

    assert job.status == JobStatus.PARTIALLY_FAILED
    assert (job.sent_customers, job.failed_customers) == (7, 1)
    failed = StagedCustomer.objects.get(outcome=Outcome.FAILED)
    assert failed.legacy_id == "legacy-000005"
    assert failed.outcome_error.startswith("HTTP 422")
    # 8 -> 4 + 4 -> 2 + 2 -> 1 + 1: three splits on the way to the refused customer.
    split = job.chunks.filter(status=ChunkStatus.SPLIT).order_by("sequence")
    assert [c.customer_count for c in split] == [8, 4, 2]
    alone = job.chunks.get(status=ChunkStatus.FAILED)
    assert alone.customer_ids == [failed.pk]
    assert alone.attempts == 1
    assert alone.parent.parent.parent == split.first()
    assert job.chunk_count == job.chunks.count() == 7
    assert sorted(job.chunks.values_list("sequence", flat=True)) == list(range(1, 8))
    assert sent_ids(job.batch) == sandbox_received_ids()


def test_too_large_answer_splits_the_chunk(sandboxed, stager, operator, quick):
    job = make_job(operator=operator, stager=stager, size=6, settings=quick, chunk_size=6)
    sandbox_script(status_code=413)

    job = run_to_end(job)

    assert job.status == JobStatus.SUCCEEDED
    parent = job.chunks.get(sequence=1)
    assert parent.status == ChunkStatus.SPLIT
    assert parent.last_status_code == 413
    halves = list(parent.children.order_by("sequence"))
    assert [(c.customer_count, c.status) for c in halves] == [(3, ChunkStatus.SENT)] * 2
    assert halves[0].customer_ids + halves[1].customer_ids == parent.customer_ids


def test_unknown_outcome_is_retried_and_counted(sandboxed, stager, operator, quick):
    job = make_job(operator=operator, stager=stager, size=3, settings=quick, chunk_size=3)
    sandbox_script(status_code=500)

    job = run_to_end(job)

    assert job.status == JobStatus.SUCCEEDED
    assert job.retried_unknown_count == 1
    chunk = job.chunks.get()
    assert (chunk.attempts, chunk.unknown_outcome_retries) == (2, 1)
    outcomes = list(chunk.attempt_log.order_by("number").values_list("number", "outcome"))
    assert outcomes == [
        (1, ChunkAttempt.Outcome.RETRY_UNKNOWN),
        (2, ChunkAttempt.Outcome.ACCEPTED),
    ]


def test_429_holds_back_the_chunk_and_every_worker_for_retry_after(
    sandboxed, stager, operator, quick
):
    job = make_job(operator=operator, stager=stager, size=2, settings=quick, chunk_size=2)
    job_transition(pk=job.pk, to=JobStatus.RUNNING)
    sandbox_script(status_code=429, retry_after_s=3)
    chunk = chunk_claim(job_id=job.pk, worker="w1")

    report = chunk_send(chunk_id=chunk.pk, worker="w1")
    answered = timezone.now()

    assert report.status == ChunkStatus.PENDING
    assert report.outcome == ChunkAttempt.Outcome.RETRY_NOT_SENT
    chunk.refresh_from_db()
    assert chunk.not_before >= answered + dt.timedelta(seconds=2.9)
    assert chunk.attempts == 1
    assert PacingState.objects.get().next_slot_at >= answered + dt.timedelta(seconds=2.9)
    assert pacing_reserve().wait_s > 2.5
    job.refresh_from_db()
    assert job.retried_unknown_count == 0


def test_spent_attempts_fail_the_chunk_and_retry_failed_sends_it_again(
    sandboxed, stager, operator, quick
):
    quick.MIGRATION_MAX_ATTEMPTS = 2
    job = make_job(operator=operator, stager=stager, size=3, settings=quick, chunk_size=3)
    sandbox_script(status_code=503)
    sandbox_script(status_code=503)

    job = run_to_end(job)

    assert job.status == JobStatus.FAILED
    assert (job.sent_customers, job.failed_customers) == (0, 3)
    failed = job.chunks.get()
    assert failed.status == ChunkStatus.FAILED
    assert failed.attempts == 2
    errors = set(job.batch.customers.values_list("outcome", "outcome_error"))
    assert len(errors) == 1
    outcome, error = errors.pop()
    assert outcome == Outcome.FAILED
    assert error.startswith("Gave up after 2 attempts. Last error: HTTP 503")

    job = job_retry_failed(job=job, user=operator)

    assert job.status == JobStatus.RUNNING
    assert job.failed_customers == 0
    retry = job.chunks.get(parent=failed)
    assert (retry.status, retry.customer_ids, retry.sequence) == (
        ChunkStatus.PENDING,
        failed.customer_ids,
        2,
    )
    assert set(job.batch.customers.values_list("outcome", flat=True)) == {Outcome.NOT_SENT}
    job = run_to_end(job)
    assert job.status == JobStatus.SUCCEEDED
    assert (job.sent_customers, job.failed_customers, job.chunk_count) == (3, 0, 2)
    with pytest.raises(services.JobStateError):
        job_retry_failed(job=job, user=operator)


def test_refused_token_fails_the_chunk_without_sending(sandboxed, stager, operator, quick):
    job = make_job(operator=operator, stager=stager, size=2, settings=quick, chunk_size=2)
    quick.MASIVO_API_KEY = "not-the-sandbox-key"
    MasivoClient().clear_cached_token()

    job = run_to_end(job)

    assert job.status == JobStatus.FAILED
    attempt = ChunkAttempt.objects.get()
    assert attempt.outcome == ChunkAttempt.Outcome.AUTH_ERROR
    assert attempt.status_code == 401
    assert "not-the-sandbox-key" not in attempt.response_excerpt
    assert not SandboxRequest.objects.exists()


def test_201_that_comes_back_after_the_lease_was_lost_is_never_sent_again(
    sandboxed, stager, operator, quick, monkeypatch
):
    quick.MIGRATION_LEASE_S = 1
    # The first worker's renewals never reach the database (a stalled worker).
    monkeypatch.setattr(leases, "lease_renew", lambda **_kwargs: True)
    job = make_job(operator=operator, stager=stager, size=2, settings=quick, chunk_size=2)
    job_transition(pk=job.pk, to=JobStatus.RUNNING)
    # Masivo keeps the customers, then answers after the first worker's lease expired.
    sandbox_script(status_code=201, delay_s=2.0)
    chunk = chunk_claim(job_id=job.pk, worker="slow")
    taken: list = []

    def second_worker() -> None:
        try:
            time.sleep(1.3)
            taken.append(chunk_claim(job_id=job.pk, worker="second"))
        finally:
            connection.close()

    thread = threading.Thread(target=second_worker)
    thread.start()
    report = chunk_send(chunk_id=chunk.pk, worker="slow")
    thread.join(30)

    # The second worker took the chunk back.
    assert [claimed.pk for claimed in taken] == [chunk.pk]
    assert report.status == ChunkStatus.SENT
    # The second worker holds a chunk that is already sent: it sends nothing.
    assert chunk_send(chunk_id=chunk.pk, worker="second").outcome == ""
    assert SandboxRequest.objects.count() == 1
    outcomes = set(ChunkAttempt.objects.values_list("outcome", flat=True))
    assert outcomes == {ChunkAttempt.Outcome.LEASE_EXPIRED, ChunkAttempt.Outcome.ACCEPTED}
    job = job_finish_if_done(job_id=job.pk)
    assert job.status == JobStatus.SUCCEEDED
    assert job.retried_unknown_count == 1
    assert sandbox_arrivals()["duplicate_receipts"] == 0


def test_pacing_wait_beyond_a_short_sleep_hands_the_chunk_back(sandboxed, stager, operator, quick):
    quick.MIGRATION_MIN_INTERVAL_S = 30
    job = make_job(operator=operator, stager=stager, size=2, settings=quick, chunk_size=1)
    job_transition(pk=job.pk, to=JobStatus.RUNNING)

    first = job_process(job_id=job.pk, worker="w1", budget_s=10)

    assert 29 < first <= 30.1
    assert SandboxRequest.objects.count() == 1
    waiting = job.chunks.get(sequence=2)
    assert (waiting.status, waiting.attempts, waiting.lease_owner) == (ChunkStatus.PENDING, 0, "")
    assert job_next_wake_in(job_id=job.pk) == pytest.approx(first, abs=1)


# --- cancel, finish, resume, wake-ups, sweep --------------------------------------------------


def test_cancel_needs_permission(running_job, stager):
    with pytest.raises(PermissionDenied, match=str(services.base.ERR_CANCEL_PERMISSION)):
        job_cancel(job=running_job, user=stager)


def test_cancel_cancels_pending_chunks_and_leaves_requests_in_flight(running_job, operator):
    in_flight = chunk_claim(job_id=running_job.pk, worker="w1")

    job = job_cancel(job=running_job, user=operator)

    assert (job.status, job.cancelled_by) == (JobStatus.CANCELLED, operator)
    assert job.finished_at is not None
    statuses = dict(job.chunks.values_list("sequence", "status"))
    assert statuses == {
        1: ChunkStatus.SENDING,
        **{n: ChunkStatus.CANCELLED for n in range(2, 6)},
    }
    with pytest.raises(services.JobStateError) as again:
        job_cancel(job=job, user=operator)
    assert again.value.messages == [
        services.base.ERR_JOB_TRANSITION
        % {"job": job.pk, "status": "cancelled", "target": "cancelled"}
    ]
    # The claimed chunk never starts its request.
    report = chunk_send(chunk_id=in_flight.pk, worker="w1")
    assert (report.status, report.outcome) == (ChunkStatus.CANCELLED, "")
    job.refresh_from_db()
    assert job.request_count == 0
    assert set(job.batch.customers.values_list("outcome", flat=True)) == {Outcome.NOT_SENT}


def _finish_with(job: MigrationJob, *, sent: int, failed: int) -> MigrationJob:
    job.chunks.update(status=ChunkStatus.SENT)
    MigrationJob.objects.filter(pk=job.pk).update(sent_customers=sent, failed_customers=failed)
    return job_finish_if_done(job_id=job.pk)


@pytest.mark.parametrize(
    ("sent", "failed", "status"),
    [
        (10, 0, JobStatus.SUCCEEDED),
        (7, 3, JobStatus.PARTIALLY_FAILED),
        (0, 10, JobStatus.FAILED),
    ],
)
def test_a_job_ends_by_its_customers_outcomes(running_job, sent, failed, status):
    job = _finish_with(running_job, sent=sent, failed=failed)

    assert job.status == status
    assert job.finished_at is not None
    assert job.batch.status == StagingBatch.Status.SUBMITTED


def test_a_job_with_open_chunks_does_not_end(running_job):
    assert job_finish_if_done(job_id=running_job.pk).status == JobStatus.RUNNING


def test_resume_takes_back_dead_leases_and_enqueues_a_run(
    running_job, operator, quick, django_capture_on_commit_callbacks
):
    dead = chunk_claim(job_id=running_job.pk, worker="dead")
    expire_lease(dead)

    with django_capture_on_commit_callbacks() as callbacks:
        job = job_resume(job=running_job, user=operator)

    dead.refresh_from_db()
    assert (dead.status, dead.lease_owner) == (ChunkStatus.PENDING, "")
    assert job.status == JobStatus.RUNNING
    assert enqueued(callbacks) == [("migrations_jobs.tasks.job_run", (job.pk,), {})]


def test_resume_needs_permission_and_an_active_job(running_job, operator, stager):
    with pytest.raises(PermissionDenied, match=str(services.base.ERR_RETRY_PERMISSION)):
        job_resume(job=running_job, user=stager)
    job = job_cancel(job=running_job, user=operator)
    with pytest.raises(services.JobStateError) as refused:
        job_resume(job=job, user=operator)
    assert refused.value.messages == [
        services.base.ERR_NOT_RESUMABLE % {"job": job.pk, "status": "cancelled"}
    ]


def test_only_the_earliest_wake_up_is_valid(running_job, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        assert job_wake_schedule(job_id=running_job.pk, delay_s=60)
        first = MigrationJob.objects.get(pk=running_job.pk).wake_token
        assert not job_wake_schedule(job_id=running_job.pk, delay_s=120)
        assert job_wake_schedule(job_id=running_job.pk, delay_s=10)
        second = MigrationJob.objects.get(pk=running_job.pk).wake_token

    assert [callback.countdown for callback in callbacks] == [60 - WAKE_EARLY_S, 10 - WAKE_EARLY_S]
    assert [callback.kwargs for callback in callbacks] == [
        {"wake": first},
        {"wake": second},
    ]
    assert not job_wake_take(job_id=running_job.pk, token=first)
    assert job_wake_take(job_id=running_job.pk, token=second)
    assert not job_wake_take(job_id=running_job.pk, token=second)


def test_sweep_revives_a_stalled_job_only(
    stager, operator, quick, django_capture_on_commit_callbacks
):
    stalled = make_job(operator=operator, stager=stager, size=2, settings=quick, chunk_size=1)
    alive = make_job(operator=operator, stager=stager, size=2, settings=quick, chunk_size=1)
    waiting = make_job(operator=operator, stager=stager, size=2, settings=quick, chunk_size=1)
    long_ago = timezone.now() - dt.timedelta(hours=1)
    MigrationJob.objects.update(status=JobStatus.RUNNING, heartbeat_at=long_ago)
    MigrationJob.objects.filter(pk=alive.pk).update(heartbeat_at=timezone.now())
    MigrationJob.objects.filter(pk=waiting.pk).update(
        wake_at=timezone.now() + dt.timedelta(minutes=5), wake_token="t"
    )

    with django_capture_on_commit_callbacks() as callbacks:
        assert jobs_sweep() == [stalled.pk]
        # The revival counts as a sign of life: a second sweep leaves the job alone.
        assert jobs_sweep() == []
        assert jobs_sweep(takeover=True) == [stalled.pk, alive.pk, waiting.pk]

    assert [args for _task, args, _kwargs in enqueued(callbacks)] == [
        (stalled.pk,),
        (stalled.pk,),
        (alive.pk,),
        (waiting.pk,),
    ]


def test_sweep_takes_back_expired_leases_and_ends_finished_jobs(running_job, quick):
    dead = chunk_claim(job_id=running_job.pk, worker="dead")
    expire_lease(dead)

    jobs_sweep()

    dead.refresh_from_db()
    assert dead.status == ChunkStatus.PENDING
    running_job.chunks.update(status=ChunkStatus.SENT)
    MigrationJob.objects.filter(pk=running_job.pk).update(sent_customers=10)
    jobs_sweep()
    running_job.refresh_from_db()
    assert running_job.status == JobStatus.SUCCEEDED


def test_progress_counts_customers_and_chunks(running_job):
    chunk_claim(job_id=running_job.pk, worker="w1")
    MigrationJob.objects.filter(pk=running_job.pk).update(sent_customers=4, failed_customers=1)
    running_job.refresh_from_db()

    progress = job_progress(job=running_job)

    assert progress["percent"] == 50
    assert (progress["sent"], progress["failed"], progress["total"]) == (4, 1, 10)
    assert progress["chunks"][ChunkStatus.SENDING] == 1
    assert progress["chunks"][ChunkStatus.PENDING] == 4


# --- admin ---------------------------------------------------------------------------------


def test_admin_lists_jobs_and_shows_one_read_only(client, running_job, operator):
    client.force_login(operator)

    listing = client.get(reverse("admin:migrations_jobs_migrationjob_changelist"))
    page = client.get(reverse("admin:migrations_jobs_migrationjob_change", args=[running_job.pk]))

    assert listing.status_code == 200
    assert f"0 / {running_job.total_customers}" in listing.content.decode()
    assert page.status_code == 200
    assert b'name="_save"' not in page.content


def test_admin_cancel_action_calls_the_service(client, running_job, operator):
    client.force_login(operator)

    response = client.post(
        reverse("admin:migrations_jobs_migrationjob_changelist"),
        {"action": "cancel_jobs", "_selected_action": [running_job.pk]},
    )

    assert response.status_code == 302
    running_job.refresh_from_db()
    assert running_job.status == JobStatus.CANCELLED
    assert running_job.cancelled_by == operator


def test_admin_offers_job_actions_only_with_their_permissions(client, running_job):
    viewer = UserFactory(username="viewer", perms=["migrations_jobs.view_migrationjob"])
    client.force_login(viewer)

    response = client.get(reverse("admin:migrations_jobs_migrationjob_changelist"))

    form = response.context["action_form"]
    actions = [choice[0] for choice in form.fields["action"].choices] if form else []
    assert "cancel_jobs" not in actions
    assert "retry_failed_chunks" not in actions
    assert "resume_jobs" not in actions
