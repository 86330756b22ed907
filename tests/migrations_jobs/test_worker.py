"""Jobs run by a real Celery worker process against the sandbox over loopback HTTP."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from customers.models import Outcome, StagedCustomer
from migrations_jobs.client import MasivoClient
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob
from migrations_jobs.sandbox.models import SandboxCustomer, SandboxRequest
from migrations_jobs.sandbox.services import (
    sandbox_arrivals,
    sandbox_configure,
    sandbox_received_ids,
    sandbox_script,
)
from migrations_jobs.services import job_cancel, job_start
from tests.factories import UserFactory
from tests.worker import approved_batch, job_wait, start_worker_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.worker

Status = MigrationJob.Status


@pytest.fixture
def submitter(transactional_db):
    return UserFactory(
        username="submitter",
        perms=[
            "customers.approve_stagingbatch",
            "customers.submit_stagingbatch",
            "migrations_jobs.cancel_migrationjob",
            "migrations_jobs.retry_migrationjob",
        ],
    )


@pytest.fixture
def stager(transactional_db):
    return UserFactory(username="stager")


def legacy_ids(batch) -> set[str]:
    return set(batch.customers.values_list("legacy_id", flat=True))


def test_batch_of_5000_arrives_whole_and_once_in_chunks_of_at_most_1000(
    start_worker, stager, submitter
):
    batch = approved_batch(creator=stager, approver=submitter, size=5000)
    worker = start_worker()

    job = job_start(batch=batch, user=submitter)
    job = job_wait(job=job, worker=worker, timeout_s=90)

    assert job.status == Status.SUCCEEDED
    assert (job.total_customers, job.sent_customers, job.failed_customers) == (5000, 5000, 0)
    assert job.chunk_count == 5
    arrivals = sandbox_arrivals()
    assert arrivals["accepted_requests"] == 5
    assert arrivals["customers"] == 5000
    assert arrivals["duplicate_receipts"] == 0
    assert sandbox_received_ids() == legacy_ids(batch)
    sizes = SandboxRequest.objects.filter(is_accepted=True).values_list("customer_count", flat=True)
    assert sorted(sizes) == [1000] * 5
    assert set(SandboxCustomer.objects.values_list("times_received", flat=True)) == {1}
    assert not StagedCustomer.objects.filter(batch=batch).exclude(outcome=Outcome.SENT).exists()
    assert set(
        StagedCustomer.objects.filter(batch=batch).values_list("outcome_job_id", flat=True)
    ) == {job.pk}
    batch.refresh_from_db()
    assert batch.status == batch.Status.SUBMITTED


def test_faults_and_slow_answers_end_in_success_with_unknown_outcomes_counted(
    start_worker, stager, submitter
):
    batch = approved_batch(creator=stager, approver=submitter, size=5000)
    # The first answers are certain (a 500, a 429, and a 201 that comes too late), the rest
    # drawn at random.
    sandbox_script(status_code=500)
    sandbox_script(status_code=429, retry_after_s=1)
    sandbox_script(status_code=201, delay_s=1.0)
    sandbox_configure(
        fail_500_rate=0.2, fail_429_rate=0.1, slow_rate=0.05, slow_s=1.0, retry_after_s=1
    )
    worker = start_worker(MASIVO_READ_TIMEOUT_S=0.4, MASIVO_TOTAL_TIMEOUT_S=0.8)

    job = job_wait(job=job_start(batch=batch, user=submitter), worker=worker, timeout_s=120)

    assert job.status == Status.SUCCEEDED
    assert (job.sent_customers, job.failed_customers) == (5000, 0)
    assert sandbox_received_ids() == legacy_ids(batch)
    attempts = ChunkAttempt.objects.filter(chunk__job=job).order_by("started_at")
    unknown = attempts.filter(
        outcome__in=[ChunkAttempt.Outcome.RETRY_UNKNOWN, ChunkAttempt.Outcome.LEASE_EXPIRED]
    )
    # No chunk failed, so every unknown outcome was retried, and counted once.
    assert job.retried_unknown_count == unknown.count() >= 2
    assert job.request_count == attempts.count() == SandboxRequest.objects.count()
    resent = SandboxRequest.objects.filter(is_accepted=True, duplicate_count__gt=0)
    assert 1 <= resent.count() <= job.retried_unknown_count
    assert sandbox_arrivals()["duplicate_receipts"] <= 1000 * job.retried_unknown_count
    # Every 429's Retry-After held back every request after it.
    for refused in attempts.filter(status_code=429):
        answered = refused.started_at.timestamp() + refused.duration_s
        later = attempts.filter(started_at__gt=refused.started_at)
        for attempt in later:
            assert attempt.started_at.timestamp() >= answered + refused.retry_after_s - 0.05


def test_token_that_lives_two_seconds_is_refreshed_not_fatal(
    start_worker, stager, submitter, settings
):
    settings.MIGRATION_CHUNK_SIZE = 50
    batch = approved_batch(creator=stager, approver=submitter, size=600)
    sandbox_configure(token_lifetime_s=2)
    MasivoClient().clear_cached_token()
    worker = start_worker(MIGRATION_MIN_INTERVAL_S=0.35)

    job = job_wait(job=job_start(batch=batch, user=submitter), worker=worker)

    assert job.status == Status.SUCCEEDED
    assert job.sent_customers == 600
    assert sandbox_arrivals()["tokens_issued"] >= 2
    assert not ChunkAttempt.objects.filter(
        chunk__job=job, outcome=ChunkAttempt.Outcome.AUTH_ERROR
    ).exists()


def test_three_refused_customers_among_1000_fail_alone_and_997_are_sent(
    start_worker, stager, submitter
):
    batch = approved_batch(creator=stager, approver=submitter, size=1000)
    refused = {"legacy-000017", "legacy-000500", "legacy-000981"}
    sandbox_configure(reject_ids=sorted(refused))
    worker = start_worker()

    job = job_wait(job=job_start(batch=batch, user=submitter), worker=worker)

    assert job.status == Status.PARTIALLY_FAILED
    assert (job.sent_customers, job.failed_customers) == (997, 3)
    failed = StagedCustomer.objects.filter(batch=batch, outcome=Outcome.FAILED)
    assert set(failed.values_list("legacy_id", flat=True)) == refused
    assert all("HTTP 422" in error for error in failed.values_list("outcome_error", flat=True))
    assert StagedCustomer.objects.filter(batch=batch, outcome=Outcome.SENT).count() == 997
    assert sandbox_received_ids() == legacy_ids(batch) - refused
    failed_chunks = JobChunk.objects.filter(job=job, status=JobChunk.Status.FAILED)
    assert sorted(failed_chunks.values_list("customer_count", flat=True)) == [1, 1, 1]
    # Halving isolates each refused customer in about log2(1000) = 10 rounds of two.
    assert job.request_count <= 1 + 3 * 2 * 10


def test_worker_killed_mid_job_a_new_worker_finishes_it_with_nothing_lost(
    start_worker, stager, submitter, settings
):
    settings.MIGRATION_CHUNK_SIZE = 100
    batch = approved_batch(creator=stager, approver=submitter, size=1200)
    # Until the kill, every answer takes 0.4 s after the customers are kept: the kill lands
    # mid-request.
    sandbox_configure(slow_rate=1.0, slow_s=0.4)
    first = start_worker(MIGRATION_LEASE_S=2)
    job = job_start(batch=batch, user=submitter)

    def request_in_flight(job: MigrationJob) -> bool:
        # A request that left less than 0.2 s ago has at least 0.2 s to go: the kill
        # lands while it is in flight.
        just_left = timezone.now() - dt.timedelta(seconds=0.2)
        return (
            job.sent_customers >= 300
            and job.chunks.filter(
                status=JobChunk.Status.SENDING, request_left_at__gte=just_left
            ).exists()
        )

    job_wait(job=job, until=request_in_flight, worker=first)
    first.kill()
    assert job_wait(job=job, until=lambda job: True).status == Status.RUNNING
    # The kill has landed: from here on the sandbox answers at once.
    sandbox_configure(slow_rate=0.0, slow_s=0.0)
    second = start_worker(MIGRATION_LEASE_S=2)
    job = job_wait(job=job, worker=second, timeout_s=60)

    assert job.status == Status.SUCCEEDED
    assert (job.sent_customers, job.failed_customers) == (1200, 0)
    assert sandbox_received_ids() == legacy_ids(batch)
    assert not StagedCustomer.objects.filter(batch=batch).exclude(outcome=Outcome.SENT).exists()
    unknown = ChunkAttempt.objects.filter(
        chunk__job=job,
        outcome__in=[ChunkAttempt.Outcome.RETRY_UNKNOWN, ChunkAttempt.Outcome.LEASE_EXPIRED],
    )
    assert job.retried_unknown_count == unknown.count()
    # The request cut short by the kill is sent again by the second worker.
    assert unknown.filter(outcome=ChunkAttempt.Outcome.LEASE_EXPIRED).count() >= 1
    resent = SandboxRequest.objects.filter(is_accepted=True, duplicate_count__gt=0).count()
    assert 1 <= resent <= job.retried_unknown_count


def test_requests_never_come_faster_than_the_interval(start_worker, stager, submitter, settings):
    interval = 0.5
    settings.MIGRATION_CHUNK_SIZE = 25
    batch = approved_batch(creator=stager, approver=submitter, size=200)
    # The sandbox enforces the same limit: a request that comes early is answered 429.
    sandbox_configure(rate_interval_s=interval)
    worker = start_worker(concurrency=2, MIGRATION_MIN_INTERVAL_S=interval)

    job = job_wait(job=job_start(batch=batch, user=submitter), worker=worker)

    assert job.status == Status.SUCCEEDED
    received = list(
        SandboxRequest.objects.order_by("received_at").values_list("received_at", flat=True)
    )
    assert len(received) == 8
    gaps = [(b - a).total_seconds() for a, b in zip(received, received[1:], strict=False)]
    assert min(gaps) >= interval, gaps
    assert not SandboxRequest.objects.filter(reason=SandboxRequest.Reason.RATE_LIMITED).exists()


def test_cancel_stops_new_requests(start_worker, stager, submitter, settings):
    settings.MIGRATION_CHUNK_SIZE = 10
    batch = approved_batch(creator=stager, approver=submitter, size=200)
    worker = start_worker(MIGRATION_MIN_INTERVAL_S=0.3)
    job = job_start(batch=batch, user=submitter)
    job_wait(job=job, until=lambda job: job.sent_customers >= 30, worker=worker)

    job = job_cancel(job=job, user=submitter)
    cancelled_at = timezone.now()
    time.sleep(1.5)

    job.refresh_from_db()
    assert job.status == Status.CANCELLED
    late = SandboxRequest.objects.filter(received_at__gt=cancelled_at)
    # A request already past its start when the cancel committed may still arrive.
    assert late.count() <= 1
    assert not late.filter(received_at__gt=cancelled_at + dt.timedelta(seconds=0.25)).exists()
    assert not JobChunk.objects.filter(job=job, status__in=JobChunk.OPEN_STATUSES).exists()
    sent = JobChunk.objects.filter(job=job, status=JobChunk.Status.SENT).count()
    assert job.sent_customers == 10 * sent == SandboxCustomer.objects.count()
    assert JobChunk.objects.filter(job=job, status=JobChunk.Status.CANCELLED).count() == 20 - sent
    assert (
        StagedCustomer.objects.filter(batch=batch, outcome=Outcome.NOT_SENT).count()
        == 200 - 10 * sent
    )
