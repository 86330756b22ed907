"""A job in phases: customers, then their transactions, then their events, against the
sandbox over loopback. Transactions leave the console once per customer and account: an
unknown outcome holds them for an operator, and a customer Masivo does not have keeps
its history."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import uuid
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from customers.models import StagedCustomer, StagedEvent, StagedTransaction, StagingBatch
from customers.payload.history import dry_run_lines
from customers.reconciliation import batch_reconciliation
from customers.services import BatchStateError, batch_approve
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob, TransactionDelivery
from migrations_jobs.sandbox.history import sandbox_history_arrivals, sandbox_history_ids
from migrations_jobs.sandbox.models import SandboxRequest
from migrations_jobs.sandbox.services import sandbox_configure, sandbox_script
from migrations_jobs.services import (
    chunk_claim,
    job_cancel,
    job_held_mark_arrived,
    job_held_resend,
    job_process,
    job_retry_failed,
    job_start,
)
from migrations_jobs.services.leases import lease_owner_name
from migrations_jobs.services.sending import chunk_body
from tests.factories import UserFactory
from tests.migrations_jobs.test_jobs import expire_lease, run_to_end
from tests.worker import mark_validated, validated_batch

JobStatus = MigrationJob.Status
ChunkStatus = JobChunk.Status
Kind = SandboxRequest.Kind
POINTS = uuid.UUID("3c90c3cc-0d44-4b50-8888-8dd25736052a")
WHEN = dt.datetime(2023, 1, 2, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def stager(db):
    return UserFactory(username="stager")


@pytest.fixture
def operator(db):
    return UserFactory(
        username="operator",
        perms=[
            "customers.approve_stagingbatch",
            "customers.submit_stagingbatch",
            "migrations_jobs.cancel_migrationjob",
            "migrations_jobs.retry_migrationjob",
        ],
    )


def with_history(batch: StagingBatch, *, transactions: int = 2, events: int = 1) -> None:
    """Give each customer of ``batch`` its transactions and purchase events."""
    for customer in StagedCustomer.objects.filter(batch=batch).order_by("pk"):
        for number in range(transactions):
            StagedTransaction.objects.create(
                batch=batch,
                customer=customer,
                customer_legacy_id=customer.legacy_id,
                reward_id=POINTS,
                type="ACCUMULATION",
                amount=Decimal(10 + number),
                issued_at=WHEN,
            )
        for number in range(events):
            StagedEvent.objects.create(
                batch=batch,
                customer=customer,
                customer_legacy_id=customer.legacy_id,
                type="PURCHASE",
                issued_at=WHEN,
                resolved_at=WHEN,
                order={"purchase_id": f"{customer.legacy_id}-{number}", "value": 10},
            )
    if batch.status == StagingBatch.Status.VALIDATED:
        mark_validated(batch)  # as a validation of the batch with its history would


def history_job(*, stager, operator, size: int, prefix: str = "legacy", **history) -> MigrationJob:
    batch = validated_batch(creator=stager, size=size, prefix=prefix)
    with_history(batch, **history)
    batch = batch_approve(batch=batch, user=operator)
    return job_start(batch=batch, user=operator)


def kinds_in_arrival_order() -> list[str]:
    accepted = SandboxRequest.objects.filter(is_accepted=True).order_by("received_at", "pk")
    return [kind for kind, _at in accepted.values_list("kind", "received_at")]


def test_a_job_sends_customers_then_transactions_then_events(sandboxed, stager, operator, quick):
    quick.MIGRATION_CHUNK_SIZE = 2
    quick.MASIVO_TX_MAX_ITEMS = 4
    job = history_job(stager=stager, operator=operator, size=3)

    assert list(job.chunks.order_by("sequence").values_list("endpoint", "status")) == [
        ("customers", ChunkStatus.PENDING),
        ("customers", ChunkStatus.PENDING),
        ("transactions", ChunkStatus.WAITING),
        ("transactions", ChunkStatus.WAITING),
        ("events", ChunkStatus.WAITING),
    ]
    assert (job.total_customers, job.total_transactions, job.total_events) == (3, 6, 3)

    job = run_to_end(job)

    assert job.status == JobStatus.SUCCEEDED
    assert (job.sent_customers, job.sent_transactions, job.sent_events) == (3, 6, 3)
    assert job.progress_percent == 100
    kinds = kinds_in_arrival_order()
    assert kinds == ["customers"] * 2 + ["transactions"] * 2 + ["events"]
    transactions = sandbox_history_arrivals(kind=Kind.TRANSACTIONS)
    assert (transactions["customers"], transactions["items"]) == (3, 6)
    assert transactions["customers_received_again"] == 0
    assert transactions["before_customer"] == 0
    assert sandbox_history_arrivals(kind=Kind.EVENTS)["items"] == 3
    delivered = TransactionDelivery.objects.values_list("legacy_id", "status", "job_id")
    assert sorted(delivered) == [(f"legacy-00000{n}", "sent", job.pk) for n in range(3)]
    (points,) = batch_reconciliation(batch=job.batch).rewards
    assert points.transactions_sent == points.transactions_to_send == Decimal(63)
    out = StringIO()
    call_command("job_status", str(job.pk), stdout=out)
    assert (
        "Phases: customers done (3 sent, 0 failed, 0 left out of 3); transactions done (6 sent, "
        "0 failed, 0 left out of 6); events done (3 sent, 0 failed, 0 left out of 3)."
    ) in out.getvalue()


def test_the_history_waits_the_configured_delay_after_the_last_accepted_customers(
    sandboxed, stager, operator, quick
):
    quick.MASIVO_HISTORY_DELAY_S = 1.5
    job = history_job(stager=stager, operator=operator, size=2, events=0)

    job = run_to_end(job)

    assert job.status == JobStatus.SUCCEEDED
    customers_done = JobChunk.objects.get(job=job, endpoint="customers").finished_at
    history_left = ChunkAttempt.objects.get(chunk__job=job, chunk__endpoint="transactions")
    assert (history_left.started_at - customers_done).total_seconds() >= 1.5


def test_a_customer_masivo_refused_keeps_its_history_and_the_job_says_so(
    sandboxed, stager, operator, quick
):
    quick.MIGRATION_CHUNK_SIZE = 4
    job = history_job(stager=stager, operator=operator, size=4)
    sandbox_configure(reject_ids=["legacy-000002"])

    job = run_to_end(job)

    assert job.status == JobStatus.PARTIALLY_FAILED
    assert (job.sent_customers, job.failed_customers) == (3, 1)
    assert (job.sent_transactions, job.skipped_transactions) == (6, 2)
    assert (job.sent_events, job.skipped_events) == (3, 1)
    assert "legacy-000002" not in sandbox_history_ids(kind=Kind.TRANSACTIONS)
    assert "legacy-000002" not in sandbox_history_ids(kind=Kind.EVENTS)
    assert len(sandbox_history_ids(kind=Kind.TRANSACTIONS)) == 3


def test_a_refused_history_chunk_is_halved_by_customer_to_find_the_refused_one(
    sandboxed, stager, operator, quick
):
    quick.MIGRATION_CHUNK_SIZE = 4
    job = history_job(stager=stager, operator=operator, size=4, events=0)
    run_to_end(job)  # customers and transactions
    assert JobChunk.objects.get(job=job, endpoint="transactions").status == ChunkStatus.SENT

    second = history_job(stager=stager, operator=operator, size=4, prefix="other", events=0)
    send_customers_only(second, quick)
    sandbox_configure(reject_ids=["other-000001"])  # refused in its transactions only

    second = run_to_end(second)

    assert second.status == JobStatus.PARTIALLY_FAILED
    assert (second.sent_transactions, second.failed_transactions) == (6, 2)
    failed = second.chunks.get(status=ChunkStatus.FAILED)
    assert (failed.endpoint, failed.customer_count, failed.item_count) == ("transactions", 1, 2)
    rows = StagedTransaction.objects.filter(pk__in=failed.item_ids)
    assert set(rows.values_list("customer_legacy_id", flat=True)) == {"other-000001"}
    assert not TransactionDelivery.objects.filter(legacy_id="other-000001").exists()


def send_customers_only(job: MigrationJob, settings) -> None:
    """Work the job through its customers: its history then waits, due a minute later;
    pull that forward to now, as if the minute had passed."""
    settings.MASIVO_HISTORY_DELAY_S = 60
    wait = job_process(job_id=job.pk, worker="test-worker", budget_s=10)
    assert wait is not None
    assert wait > 50
    assert not job.chunks.filter(endpoint="customers").exclude(status="sent").exists()
    history = job.chunks.filter(status=ChunkStatus.PENDING)
    assert history.exists()
    assert not history.filter(endpoint="customers").exists()
    history.update(not_before=timezone.now())
    settings.MASIVO_HISTORY_DELAY_S = 0


def test_transactions_of_unknown_outcome_are_held_never_sent_again_by_themselves(
    sandboxed, stager, operator, quick
):
    quick.MIGRATION_UNKNOWN_OUTCOME = "resend"  # what customers do; transactions never
    job = history_job(stager=stager, operator=operator, size=2)
    send_customers_only(job, quick)
    sandbox_script(status_code=500)

    job = run_to_end(job)

    assert job.status == JobStatus.HELD
    held = job.chunks.get(endpoint="transactions")
    assert held.status == ChunkStatus.HELD
    assert held.attempts == 1
    assert job.chunks.get(endpoint="events").status == ChunkStatus.WAITING
    assert sandbox_history_arrivals(kind=Kind.TRANSACTIONS)["requests"] == 1
    assert set(TransactionDelivery.objects.values_list("status", flat=True)) == {"booked"}

    job = job_held_mark_arrived(job=job, user=operator)
    job = run_to_end(job)

    assert job.status == JobStatus.SUCCEEDED
    assert sandbox_history_arrivals(kind=Kind.TRANSACTIONS)["requests"] == 1
    assert (job.sent_transactions, job.sent_events) == (4, 2)
    assert set(TransactionDelivery.objects.values_list("status", flat=True)) == {"sent"}


def test_an_operator_may_send_held_transactions_again(sandboxed, stager, operator, quick):
    job = history_job(stager=stager, operator=operator, size=2, events=0)
    send_customers_only(job, quick)
    sandbox_script(status_code=500)
    job = run_to_end(job)
    assert job.status == JobStatus.HELD

    job = job_held_resend(job=job, user=operator)
    job = run_to_end(job)

    assert job.status == JobStatus.SUCCEEDED
    assert sandbox_history_arrivals(kind=Kind.TRANSACTIONS)["accepted_requests"] == 1
    assert job.sent_transactions == 4


def test_a_worker_lost_after_the_transactions_left_holds_them(sandboxed, stager, operator, quick):
    job = history_job(stager=stager, operator=operator, size=2, events=0)
    send_customers_only(job, quick)
    worker = lease_owner_name(run="lost")
    chunk = chunk_claim(job_id=job.pk, worker=worker)
    assert chunk.endpoint == "transactions"
    JobChunk.objects.filter(pk=chunk.pk).update(
        request_started_at=timezone.now(), request_left_at=timezone.now(), attempts=1
    )
    expire_lease(chunk)

    assert chunk_claim(job_id=job.pk, worker="another") is None

    chunk.refresh_from_db()
    assert chunk.status == ChunkStatus.HELD
    assert chunk.may_have_arrived
    assert chunk.last_outcome == ChunkAttempt.Outcome.LEASE_EXPIRED


def test_transactions_sent_by_an_earlier_job_are_not_sent_again(sandboxed, stager, operator, quick):
    first = run_to_end(history_job(stager=stager, operator=operator, size=2, events=0))
    assert first.sent_transactions == 4
    again = validated_batch(creator=stager, size=0, prefix="again")
    for legacy_id in ("legacy-000000", "legacy-000001"):
        StagedTransaction.objects.create(
            batch=again,
            customer_legacy_id=legacy_id,
            reward_id=POINTS,
            type="ACCUMULATION",
            amount=Decimal(5),
            issued_at=WHEN,
        )
    again = mark_validated(again)
    job = job_start(batch=batch_approve(batch=again, user=operator), user=operator)

    job = run_to_end(job)

    assert job.status == JobStatus.SUCCEEDED
    assert (job.sent_transactions, job.skipped_transactions) == (0, 2)
    assert job.chunks.get().status == ChunkStatus.SKIPPED
    assert sandbox_history_arrivals(kind=Kind.TRANSACTIONS)["accepted_requests"] == 1


def test_cancelling_a_job_cancels_its_waiting_history(sandboxed, stager, operator, quick):
    job = history_job(stager=stager, operator=operator, size=2)

    job_cancel(job=job, user=operator)

    statuses = set(job.chunks.values_list("status", flat=True))
    assert statuses == {ChunkStatus.CANCELLED}


def test_history_changed_after_approval_is_refused_at_submit(stager, operator):
    batch = validated_batch(creator=stager, size=2)
    with_history(batch, transactions=1, events=0)
    batch = batch_approve(batch=batch, user=operator)
    StagedTransaction.objects.filter(batch=batch).update(amount=Decimal("99"))

    with pytest.raises(BatchStateError) as refused:
        job_start(batch=batch, user=operator)

    assert refused.value.code == "changed"
    assert not MigrationJob.objects.exists()


def test_the_history_a_job_plans_is_its_dry_run(stager, operator, settings):
    settings.MASIVO_EVENTS_MAX_ITEMS = 2
    job = history_job(stager=stager, operator=operator, size=3, transactions=1, events=1)

    for kind in ("transactions", "events"):
        chunks = job.chunks.filter(endpoint=kind).order_by("sequence")
        planned = [chunk_body(chunk) + b"\n" for chunk in chunks]
        assert planned == list(dry_run_lines(endpoint=kind, batch=job.batch))
    events = [json.loads(chunk_body(c)) for c in job.chunks.filter(endpoint="events")]
    assert [len(body["customers"]) for body in events] == [2, 1]


def test_the_job_page_shows_each_phase_and_labels_the_history_chunks(
    sandboxed, stager, operator, quick, client
):
    job = history_job(stager=stager, operator=operator, size=2)
    operator.user_permissions.add(*Permission.objects.filter(codename="view_migrationjob"))
    client.force_login(operator)
    url = reverse("admin:migrations_jobs_migrationjob_change", args=[job.pk])

    before = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    run_to_end(job)
    after = client.get(url, HTTP_ACCEPT_LANGUAGE="es").content.decode()

    assert re.findall(r'data-phase="(\w+)" data-state="(\w+)"', before) == [
        ("customers", "sending"),
        ("transactions", "waiting"),
        ("events", "waiting"),
    ]
    assert re.findall(r'data-phase="(\w+)" data-state="(\w+)"', after) == [
        ("customers", "done"),
        ("transactions", "done"),
        ("events", "done"),
    ]
    assert "4 transacciones" in after
    assert "2 eventos" in after


def test_retrying_failed_customers_sends_the_history_the_job_left_out(
    sandboxed, stager, operator, quick
):
    quick.MIGRATION_CHUNK_SIZE = 2
    quick.MIGRATION_MAX_ATTEMPTS = 1
    job = history_job(stager=stager, operator=operator, size=4)
    sandbox_script(status_code=503)  # the first chunk of customers, out of attempts

    job = run_to_end(job)

    assert job.status == JobStatus.PARTIALLY_FAILED
    assert (job.sent_customers, job.failed_customers) == (2, 2)
    assert (job.sent_transactions, job.skipped_transactions) == (4, 4)
    assert (job.sent_events, job.skipped_events) == (2, 2)

    job = run_to_end(job_retry_failed(job=job, user=operator))

    assert job.status == JobStatus.SUCCEEDED
    assert (job.sent_customers, job.failed_customers) == (4, 0)
    assert (job.sent_transactions, job.skipped_transactions, job.total_transactions) == (8, 0, 8)
    assert (job.sent_events, job.skipped_events) == (4, 0)
    assert len(sandbox_history_ids(kind=Kind.TRANSACTIONS)) == 4
    assert sandbox_history_arrivals(kind=Kind.TRANSACTIONS)["customers_received_again"] == 0
    assert sandbox_history_arrivals(kind=Kind.EVENTS)["customers_received_again"] == 0
    assert kinds_in_arrival_order()[-3:] == ["customers", "transactions", "events"]


def test_the_history_csv_says_what_became_of_each_customers_rows(
    sandboxed, stager, operator, quick, client
):
    quick.MIGRATION_CHUNK_SIZE = 4
    job = history_job(stager=stager, operator=operator, size=4)
    sandbox_configure(reject_ids=["legacy-000002"])
    job = run_to_end(job)
    operator.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_migrationjob", "view_stagedcustomer"])
    )
    client.force_login(operator)

    admin_csv = client.get(reverse("admin:migrations_jobs_migrationjob_history_csv", args=[job.pk]))
    api_csv = client.get(reverse("api:job-history-csv", args=[job.pk]))

    assert admin_csv["Content-Disposition"] == f'attachment; filename="job-{job.pk}-history.csv"'
    text = b"".join(admin_csv.streaming_content).decode()
    assert text == b"".join(api_csv.streaming_content).decode()
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ["legacy_id", "kind", "rows", "outcome", "chunk", "attempts", "detail"]
    by_customer = {(line[0], line[1]): line[2:4] for line in lines[1:]}
    assert by_customer[("legacy-000000", "transactions")] == ["2", "sent"]
    assert by_customer[("legacy-000003", "events")] == ["1", "sent"]
    assert by_customer[("legacy-000002", "transactions")] == ["2", "left_out"]
    assert by_customer[("legacy-000002", "events")] == ["1", "left_out"]
    left_out = next(line for line in lines if line[:2] == ["legacy-000002", "transactions"])
    assert "Masivo did not have this customer" in left_out[-1]
    assert len(lines) == 1 + 8
