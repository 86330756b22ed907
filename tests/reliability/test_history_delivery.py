"""Transactions leave the console once, with real worker processes: a worker killed after a
chunk of transactions left holds that chunk for an operator instead of sending it again,
and the job's events wait for that decision. Every customer's transactions reach Masivo in
exactly one entry."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from decimal import Decimal

import pytest

from customers.models import StagedCustomer, StagedEvent, StagedTransaction
from customers.services import batch_approve
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob, TransactionDelivery
from migrations_jobs.sandbox.history import sandbox_history_arrivals
from migrations_jobs.sandbox.models import SandboxHistoryEntry, SandboxRequest
from migrations_jobs.sandbox.services import sandbox_configure
from migrations_jobs.services import job_held_mark_arrived, job_start
from tests.reliability.conftest import figure
from tests.worker import job_wait, mark_validated, validated_batch

pytestmark = pytest.mark.worker

ChunkStatus = JobChunk.Status
JobStatus = MigrationJob.Status
Kind = SandboxRequest.Kind
POINTS = uuid.UUID("3c90c3cc-0d44-4b50-8888-8dd25736052a")
WHEN = dt.datetime(2023, 1, 2, 10, 0, tzinfo=dt.UTC)
LEASE_S = 5


def batch_with_history(*, stager, approver, size: int):
    batch = validated_batch(creator=stager, size=size, prefix="tx")
    customers = list(StagedCustomer.objects.filter(batch=batch).values_list("pk", "legacy_id"))
    StagedTransaction.objects.bulk_create(
        StagedTransaction(
            batch=batch,
            customer_id=pk,
            customer_legacy_id=legacy_id,
            reward_id=POINTS,
            type="ACCUMULATION",
            amount=Decimal(number + 1),
            issued_at=WHEN,
        )
        for pk, legacy_id in customers
        for number in range(2)
    )
    StagedEvent.objects.bulk_create(
        StagedEvent(
            batch=batch,
            customer_id=pk,
            customer_legacy_id=legacy_id,
            type="PURCHASE",
            issued_at=WHEN,
            resolved_at=WHEN,
            order={"purchase_id": legacy_id},
        )
        for pk, legacy_id in customers
    )
    return batch_approve(batch=mark_validated(batch), user=approver)


def transactions_in_flight(job: MigrationJob) -> JobChunk | None:
    return JobChunk.objects.filter(
        job=job,
        endpoint="transactions",
        status=ChunkStatus.SENDING,
        request_left_at__isnull=False,
    ).first()


def test_a_worker_killed_after_transactions_left_never_sends_them_again(
    start_worker, stager, submitter, settings
):
    settings.MIGRATION_CHUNK_SIZE = 100
    settings.MASIVO_TX_MAX_ITEMS = 100  # 50 customers' transactions per request
    batch = batch_with_history(stager=stager, approver=submitter, size=300)
    sandbox_configure(slow_rate=1.0, slow_s=1.0)
    pace = {"MIGRATION_LEASE_S": LEASE_S, "MIGRATION_MIN_INTERVAL_S": 0}
    worker = start_worker(**pace)
    job = job_start(batch=batch, user=submitter)

    job_wait(job=job, until=lambda j: transactions_in_flight(j) is not None, worker=worker)
    cut = transactions_in_flight(job)
    worker.kill()
    killed_at = time.monotonic()
    # The kill has landed: from here on the sandbox answers at once.
    sandbox_configure(slow_rate=0.0, slow_s=0.0)
    replacement = start_worker(**pace)
    job = job_wait(
        job=job, until=lambda j: j.status == JobStatus.HELD, worker=replacement, timeout_s=60
    )
    held_after_s = round(time.monotonic() - killed_at, 1)
    cut.refresh_from_db()
    held = cut.status
    requests_of_cut = sandbox_history_arrivals(kind=Kind.TRANSACTIONS)
    events_before_decision = sandbox_history_arrivals(kind=Kind.EVENTS)["requests"]

    job = job_held_mark_arrived(job=job, user=submitter)
    job = job_wait(job=job, worker=replacement, timeout_s=60)

    transactions = sandbox_history_arrivals(kind=Kind.TRANSACTIONS)
    events = sandbox_history_arrivals(kind=Kind.EVENTS)
    figures = figure(
        "transactions_worker_killed",
        held_after_kill_s=held_after_s,
        lease_s=LEASE_S,
        transaction_requests=transactions["requests"],
        customers_received_again=transactions["customers_received_again"],
        events_before_decision=events_before_decision,
    )
    assert held == ChunkStatus.HELD, figures
    cut.refresh_from_db()
    assert cut.status == ChunkStatus.SENT, figures  # marked arrived
    assert ChunkAttempt.objects.filter(
        chunk=cut, outcome=ChunkAttempt.Outcome.LEASE_EXPIRED
    ).exists(), figures
    assert cut.attempts == 1, figures
    assert requests_of_cut["requests"] == transactions["requests"] == 6, figures
    assert transactions["customers"] == 300, figures
    assert transactions["customers_received_again"] == 0, figures
    assert transactions["before_customer"] == 0, figures
    assert events_before_decision == 0, figures
    assert events["customers"] == 300, figures
    assert events["customers_received_again"] == 0, figures
    assert job.status == JobStatus.SUCCEEDED, figures
    assert (job.sent_transactions, job.sent_events) == (600, 300), figures
    assert TransactionDelivery.objects.filter(status="sent").count() == 300, figures
    assert SandboxHistoryEntry.objects.filter(kind=Kind.TRANSACTIONS).count() == 300, figures
