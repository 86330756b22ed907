"""A customer id is sent to a Masivo account once: deliveries booked at claim, skipped
customers, send again, chunks held with an unknown outcome, the fence and dead owners."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from customers.models import Outcome, StagedCustomer, StagingBatch
from customers.selectors import batch_overlaps
from customers.services import BatchStateError, batch_approve, batch_validate
from migrations_jobs.exports import customer_outcome_detail
from migrations_jobs.models import ChunkAttempt, Delivery, JobChunk, MigrationJob, SendAgain
from migrations_jobs.sandbox.models import SandboxCustomer, SandboxRequest
from migrations_jobs.sandbox.services import sandbox_script
from migrations_jobs.selectors import job_customers
from migrations_jobs.services import (
    chunk_claim,
    chunk_send,
    customers_send_again,
    job_held_mark_arrived,
    job_held_resend,
    job_start,
    jobs_sweep,
    lease_owner_name,
    masivo_account,
    sending,
)
from migrations_jobs.services.base import job_transition
from migrations_jobs.services.deliveries import DELIVERIES_ANALYZE_EVERY
from migrations_jobs.services.leases import Fence, Lease
from tests.factories import UserFactory
from tests.migrations_jobs.test_jobs import OPERATOR_PERMS, run_to_end
from tests.worker import approved_batch, validated_batch

JobStatus = MigrationJob.Status
ChunkStatus = JobChunk.Status


@pytest.fixture
def stager(transactional_db):
    return UserFactory(username="stager")


@pytest.fixture
def operator(transactional_db):
    return UserFactory(username="operator", perms=OPERATOR_PERMS)


def submitted(*, stager, operator, size: int, prefix: str = "shared") -> MigrationJob:
    batch = approved_batch(creator=stager, approver=operator, size=size, prefix=prefix)
    return job_start(batch=batch, user=operator)


def receipts() -> dict[str, int]:
    return dict(SandboxCustomer.objects.values_list("legacy_id", "times_received"))


# --- one delivery per account and id -------------------------------------------------------


def test_two_batches_sharing_customers_send_each_id_once(sandboxed, stager, operator, settings):
    settings.MIGRATION_CHUNK_SIZE = 4
    first = submitted(stager=stager, operator=operator, size=10)
    second = submitted(stager=stager, operator=operator, size=15)

    first, second = run_to_end(first), run_to_end(second)

    assert set(receipts().values()) == {1}
    assert len(receipts()) == 15
    assert (first.status, first.sent_customers, first.skipped_customers) == (
        JobStatus.SUCCEEDED,
        10,
        0,
    )
    assert (second.status, second.sent_customers, second.skipped_customers) == (
        JobStatus.SUCCEEDED,
        5,
        10,
    )
    assert second.progress_percent == 100
    skipped = StagedCustomer.objects.filter(batch=second.batch, outcome=Outcome.SKIPPED)
    assert skipped.count() == 10
    assert set(skipped.values_list("outcome_other_job_id", flat=True)) == {first.pk}
    assert Delivery.objects.count() == 15
    assert set(Delivery.objects.values_list("account", "status", "times_sent")) == {
        (masivo_account(), Delivery.Status.SENT, 1)
    }


def test_a_chunk_whose_customers_another_batch_holds_is_skipped_without_a_request(
    sandboxed, stager, operator, settings
):
    settings.MIGRATION_CHUNK_SIZE = 5
    first = run_to_end(submitted(stager=stager, operator=operator, size=10))
    requests = SandboxRequest.objects.count()

    second = run_to_end(submitted(stager=stager, operator=operator, size=10))

    assert SandboxRequest.objects.count() == requests
    assert set(second.chunks.values_list("status", "skipped_count", "customer_count")) == {
        (ChunkStatus.SKIPPED, 5, 0)
    }
    assert (second.status, second.sent_customers, second.skipped_customers) == (
        JobStatus.SUCCEEDED,
        0,
        10,
    )
    detail = customer_outcome_detail(job_customers(job=second, outcome=Outcome.SKIPPED).first())
    assert detail == f"Sent by batch “{first.batch.name}”, job #{first.pk}."


def test_a_customer_being_sent_by_another_job_is_skipped(sandboxed, stager, operator, settings):
    settings.MIGRATION_CHUNK_SIZE = 3
    first = submitted(stager=stager, operator=operator, size=3)
    second = submitted(stager=stager, operator=operator, size=3)
    for job in (first, second):
        job_transition(pk=job.pk, to=JobStatus.RUNNING)
    held = chunk_claim(job_id=first.pk, worker="w1")

    assert chunk_claim(job_id=second.pk, worker="w2") is None

    assert held.customer_count == 3
    second.refresh_from_db()
    assert second.skipped_customers == 3
    customer = job_customers(job=second, outcome=Outcome.SKIPPED).first()
    assert customer_outcome_detail(customer).startswith("Being sent by batch")


def test_a_refused_chunk_frees_its_ids_for_another_batch(sandboxed, stager, operator, settings):
    settings.MIGRATION_CHUNK_SIZE = 2
    first = submitted(stager=stager, operator=operator, size=2)
    sandbox_script(status_code=403)
    first = run_to_end(first)
    assert first.status == JobStatus.FAILED
    assert not Delivery.objects.exists()

    second = run_to_end(submitted(stager=stager, operator=operator, size=2))

    assert (second.sent_customers, second.skipped_customers) == (2, 0)
    assert set(receipts().values()) == {1}


def test_a_chunk_given_up_after_an_unknown_outcome_keeps_its_ids(
    sandboxed, stager, operator, settings
):
    settings.MIGRATION_CHUNK_SIZE = 2
    settings.MIGRATION_MAX_ATTEMPTS = 2
    first = submitted(stager=stager, operator=operator, size=2)
    sandbox_script(status_code=500)
    sandbox_script(status_code=500)
    first = run_to_end(first)
    assert first.status == JobStatus.FAILED
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.UNCERTAIN}

    second = run_to_end(submitted(stager=stager, operator=operator, size=2))

    assert (second.sent_customers, second.skipped_customers) == (0, 2)
    customer = job_customers(job=second, outcome=Outcome.SKIPPED).first()
    assert "may have sent it" in customer_outcome_detail(customer)


def test_overlaps_name_the_approved_and_submitted_batches_only(transactional_db, stager, operator):
    sent = approved_batch(creator=stager, approver=operator, size=6, prefix="o", name="sent")
    job_start(batch=sent, user=operator)
    approved_batch(creator=stager, approver=operator, size=3, prefix="o", name="approved")
    validated_batch(creator=stager, size=6, prefix="o", name="only validated")
    mine = validated_batch(creator=stager, size=8, prefix="o", name="mine")
    StagedCustomer.objects.filter(batch=mine, legacy_id="o-000000").update(is_excluded=True)

    found = {(o.name, o.status, o.customers) for o in batch_overlaps(batch=mine)}

    assert found == {
        ("sent", StagingBatch.Status.SUBMITTED, 5),
        ("approved", StagingBatch.Status.APPROVED, 2),
    }


# --- send again ------------------------------------------------------------------------------


def test_send_again_sends_skipped_customers_from_this_batch_and_is_recorded(
    sandboxed, stager, operator, settings
):
    settings.MIGRATION_CHUNK_SIZE = 4
    first = run_to_end(submitted(stager=stager, operator=operator, size=4))
    second = run_to_end(submitted(stager=stager, operator=operator, size=6))
    skipped = list(
        StagedCustomer.objects.filter(batch=second.batch, outcome=Outcome.SKIPPED).values_list(
            "pk", flat=True
        )
    )
    assert len(skipped) == 4

    record = customers_send_again(
        batch=second.batch, customer_ids=skipped, reason="Values fixed in batch two", user=operator
    )
    second = run_to_end(second)

    assert (record.job_id, record.customer_count, record.reason) == (
        second.pk,
        4,
        "Values fixed in batch two",
    )
    assert SendAgain.objects.get().requested_by == operator
    assert (second.status, second.sent_customers, second.skipped_customers) == (
        JobStatus.SUCCEEDED,
        6,
        0,
    )
    assert sorted(receipts().values()) == [1, 1, 2, 2, 2, 2]
    assert set(
        Delivery.objects.filter(customer__batch=second.batch).values_list("times_sent", flat=True)
    ) == {1, 2}
    assert not StagedCustomer.objects.filter(resend=True).exists()
    first.refresh_from_db()
    assert first.sent_customers == 4


def test_send_again_before_approval_lets_the_job_send_an_id_another_batch_sent(
    sandboxed, stager, operator, settings
):
    run_to_end(submitted(stager=stager, operator=operator, size=2))
    again = validated_batch(creator=stager, size=2, prefix="shared", name="again")
    pks = list(again.customers.values_list("pk", flat=True))

    customers_send_again(batch=again, customer_ids=pks, reason="Masivo lost them", user=operator)
    batch_validate(batch=again, user=stager)
    approver = UserFactory(username="second-approver", perms=OPERATOR_PERMS)
    batch_approve(batch=again, user=approver)
    job = run_to_end(job_start(batch=again, user=approver))

    assert (job.sent_customers, job.skipped_customers) == (2, 0)
    assert sorted(receipts().values()) == [2, 2]
    assert SendAgain.objects.get().job is None


def test_send_again_needs_the_approve_permission_and_a_reason(transactional_db, stager):
    batch = validated_batch(creator=stager, size=1)
    pks = list(batch.customers.values_list("pk", flat=True))

    with pytest.raises(PermissionDenied):
        customers_send_again(batch=batch, customer_ids=pks, reason="why", user=stager)
    approver = UserFactory(username="approver", perms=OPERATOR_PERMS)
    with pytest.raises(ValidationError):
        customers_send_again(batch=batch, customer_ids=pks, reason="  ", user=approver)
    assert not SendAgain.objects.exists()
    assert not StagedCustomer.objects.filter(resend=True).exists()


def test_send_again_refuses_an_approved_batch(transactional_db, stager, operator):
    batch = approved_batch(creator=stager, approver=operator, size=1)

    with pytest.raises(BatchStateError):
        customers_send_again(
            batch=batch,
            customer_ids=list(batch.customers.values_list("pk", flat=True)),
            reason="why",
            user=operator,
        )


# --- unknown outcomes ---------------------------------------------------------------------


def test_a_chunk_sent_again_after_an_unknown_outcome_marks_its_customers(
    sandboxed, stager, operator, settings
):
    settings.MIGRATION_CHUNK_SIZE = 3
    sandbox_script(status_code=500)

    job = run_to_end(submitted(stager=stager, operator=operator, size=3))

    assert job.status == JobStatus.SUCCEEDED
    assert set(job.batch.customers.values_list("outcome", "outcome_maybe_twice")) == {
        (Outcome.SENT, True)
    }
    customer = job_customers(job=job, possibly_twice=True).first()
    assert "may hold it twice" in customer_outcome_detail(customer)


@pytest.mark.parametrize("decision", ["arrived", "send again"])
def test_hold_keeps_a_chunk_of_unknown_outcome_for_an_operator(
    sandboxed, stager, operator, settings, decision
):
    settings.MIGRATION_CHUNK_SIZE = 3
    settings.MIGRATION_UNKNOWN_OUTCOME = "hold"
    sandbox_script(status_code=504)

    job = run_to_end(submitted(stager=stager, operator=operator, size=6))

    assert job.status == JobStatus.HELD
    assert not job.is_terminal
    held = job.chunks.get(status=ChunkStatus.HELD)
    assert held.attempts == 1
    assert set(
        StagedCustomer.objects.filter(pk__in=held.customer_ids).values_list("outcome", flat=True)
    ) == {Outcome.NOT_SENT}
    assert job.sent_customers == 3
    requests = SandboxRequest.objects.count()

    if decision == "arrived":
        job = job_held_mark_arrived(job=job, user=operator)
        assert SandboxRequest.objects.count() == requests
    else:
        job = run_to_end(job_held_resend(job=job, user=operator))
        assert SandboxRequest.objects.count() == requests + 1
        assert job.retried_unknown_count == 1

    assert (job.status, job.sent_customers) == (JobStatus.SUCCEEDED, 6)
    twice = set(
        StagedCustomer.objects.filter(pk__in=held.customer_ids).values_list(
            "outcome_maybe_twice", flat=True
        )
    )
    assert twice == {decision == "send again"}
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}


# --- leases, the fence, dead owners ---------------------------------------------------------


def test_a_worker_that_lost_its_lease_after_booking_its_slot_never_sends(
    sandboxed, stager, operator, settings, monkeypatch
):
    settings.MIGRATION_CHUNK_SIZE = 2
    job = submitted(stager=stager, operator=operator, size=2)
    job_transition(pk=job.pk, to=JobStatus.RUNNING)
    chunk = chunk_claim(job_id=job.pk, worker="stalled")
    begin = sending._request_begin
    taken = []

    def stall_after_booking(**kwargs):
        booking = begin(**kwargs)
        # The worker stalls here (stopped, swapped out) past its lease; another takes over.
        JobChunk.objects.filter(pk=chunk.pk).update(
            lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
        )
        taken.append(chunk_claim(job_id=job.pk, worker="healthy"))
        return booking

    monkeypatch.setattr(sending, "_request_begin", stall_after_booking)

    report = chunk_send(chunk_id=chunk.pk, worker="stalled")

    assert report.outcome == ""
    assert not SandboxRequest.objects.exists()
    assert taken[0].pk == chunk.pk
    taken[0].refresh_from_db()
    assert (taken[0].lease_owner, taken[0].lease_version, taken[0].attempts) == ("healthy", 2, 0)
    # Booked, never left: taken back quietly, no attempt counted as an unknown outcome.
    assert not ChunkAttempt.objects.exists()
    monkeypatch.setattr(sending, "_request_begin", begin)
    assert chunk_send(chunk_id=chunk.pk, worker="healthy").status == ChunkStatus.SENT
    assert set(receipts().values()) == {1}


def test_the_fence_refuses_a_lease_of_an_older_version(transactional_db, stager, operator):
    job = submitted(stager=stager, operator=operator, size=1)
    job_transition(pk=job.pk, to=JobStatus.RUNNING)
    chunk = chunk_claim(job_id=job.pk, worker="w")
    old = Lease(chunk_id=chunk.pk, worker="w", version=chunk.lease_version)
    JobChunk.objects.filter(pk=chunk.pk).update(status=ChunkStatus.PENDING, lease_owner="")
    again = chunk_claim(job_id=job.pk, worker="w")

    assert not Fence(lease=old, job_id=job.pk)()
    assert Fence(
        lease=Lease(chunk_id=chunk.pk, worker="w", version=again.lease_version), job_id=job.pk
    )()
    again.refresh_from_db()
    assert again.attempts == 1
    assert again.request_left_at is not None


def test_a_chunk_held_by_a_dead_process_of_this_host_is_free_at_once(
    transactional_db, stager, operator
):
    job = submitted(stager=stager, operator=operator, size=2)
    job_transition(pk=job.pk, to=JobStatus.RUNNING)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])  # noqa: S603
    gone.wait()
    owner = lease_owner_name(run="dead").replace(f":{os.getpid()}:", f":{gone.pid}:")
    chunk = chunk_claim(job_id=job.pk, worker=owner)
    assert chunk.lease_expires_at > timezone.now() + dt.timedelta(seconds=5)

    revived = jobs_sweep()

    chunk.refresh_from_db()
    assert (chunk.status, chunk.lease_owner) == (ChunkStatus.PENDING, "")
    assert revived == [job.pk]


def test_a_chunk_held_by_a_live_process_keeps_its_lease(transactional_db, stager, operator):
    job = submitted(stager=stager, operator=operator, size=2)
    job_transition(pk=job.pk, to=JobStatus.RUNNING)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # noqa: S603
    try:
        owner = lease_owner_name(run="alive").replace(f":{os.getpid()}:", f":{alive.pid}:")
        chunk = chunk_claim(job_id=job.pk, worker=owner)

        jobs_sweep()

        chunk.refresh_from_db()
        assert (chunk.status, chunk.lease_owner) == (ChunkStatus.SENDING, owner)
    finally:
        alive.kill()
        alive.wait()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="statistics are PostgreSQL's")
def test_a_job_renews_the_statistics_of_the_deliveries_as_it_books_them(
    sandboxed, stager, operator, settings
):
    settings.MIGRATION_CHUNK_SIZE = 1
    job = submitted(stager=stager, operator=operator, size=DELIVERIES_ANALYZE_EVERY + 5)

    job = run_to_end(job)

    assert job.status == JobStatus.SUCCEEDED
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE relname = %s", [Delivery._meta.db_table]
        )
        (estimate,) = cursor.fetchone()
    # Renewed once the chunk numbered DELIVERIES_ANALYZE_EVERY + 1 had booked its customer:
    # the planner counts the deliveries there were then, not the empty table it first saw.
    assert estimate == DELIVERIES_ANALYZE_EVERY + 1
