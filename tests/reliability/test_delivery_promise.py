"""The delivery promise with real worker processes: each customer id once across batches and
concurrent jobs, a dead worker costs seconds (not its lease when its host can tell it is
dead, one lease when it cannot), a stalled worker that lost its lease never sends, a warm
shutdown gives back what it has not sent, and the console's own pace causes no 429.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
import uuid
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from customers.models import Outcome, StagedCustomer
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob, PacingState
from migrations_jobs.sandbox.models import SandboxCustomer, SandboxRequest
from migrations_jobs.sandbox.services import sandbox_configure
from migrations_jobs.services import job_start
from tests.reliability.conftest import figure, timed
from tests.worker import approved_batch, database_url_for_worker, job_wait

pytestmark = pytest.mark.worker

ChunkStatus = JobChunk.Status
JobStatus = MigrationJob.Status
# The default lease: what a worker holds a chunk for between renewals.
DEFAULT_LEASE_S = 20
# What an operator waits for at most, at default settings, when a worker dies.
DEAD_WORKER_BOUND_S = 60
LOST_HOST = "lost-host"


def receipts(batch) -> list[int]:
    ids = list(batch.customers.values_list("legacy_id", flat=True))
    return list(
        SandboxCustomer.objects.filter(legacy_id__in=ids).values_list("times_received", flat=True)
    )


def tally(values: list[int]) -> dict[int, int]:
    """``{times received: customers}`` for a figure."""
    return dict(sorted(Counter(values).items()))


def chunk_receipts(chunk: JobChunk) -> list[int]:
    ids = StagedCustomer.objects.filter(pk__in=chunk.customer_ids).values_list(
        "legacy_id", flat=True
    )
    return sorted(
        SandboxCustomer.objects.filter(legacy_id__in=list(ids)).values_list(
            "times_received", flat=True
        )
    )


def held_chunk(job: MigrationJob, *, owner_prefix: str = "", left: bool) -> JobChunk | None:
    chunks = JobChunk.objects.filter(
        job=job, status=ChunkStatus.SENDING, request_left_at__isnull=not left
    )
    if owner_prefix:
        chunks = chunks.filter(lease_owner__startswith=owner_prefix)
    return chunks.first()


def waiting_for_its_slot(job: MigrationJob, *, owner_prefix: str = "") -> JobChunk | None:
    """A claimed chunk whose request has not left, with its pacing slot 0.3 s away or more."""
    state = PacingState.objects.first()
    if state is None or state.next_slot_at is None:
        return None
    if state.next_slot_at < timezone.now() + dt.timedelta(seconds=0.3):
        return None
    return held_chunk(job, owner_prefix=owner_prefix, left=False)


def test_two_jobs_with_overlapping_customers_at_once_send_each_id_once(
    start_worker, stager, submitter, settings
):
    settings.MIGRATION_CHUNK_SIZE = 50
    first = approved_batch(creator=stager, approver=submitter, size=1500, prefix="both")
    second = approved_batch(creator=stager, approver=submitter, size=2000, prefix="both")
    sandbox_configure(slow_rate=1.0, slow_s=0.05)
    worker = start_worker(concurrency=4, MIGRATION_MAX_IN_FLIGHT=2)

    with timed() as took:
        jobs = [job_start(batch=batch, user=submitter) for batch in (first, second)]
        jobs = [job_wait(job=job, worker=worker, timeout_s=120) for job in jobs]

    union = set(first.customers.values_list("legacy_id", flat=True)) | set(
        second.customers.values_list("legacy_id", flat=True)
    )
    arrived = dict(SandboxCustomer.objects.values_list("legacy_id", "times_received"))
    figures = figure(
        "overlapping_jobs",
        seconds=took[0],
        customers=len(union),
        arrived=len(arrived),
        most_receipts=max(arrived.values(), default=0),
        sent=[job.sent_customers for job in jobs],
        skipped=[job.skipped_customers for job in jobs],
    )
    assert set(arrived) == union, figures
    assert set(arrived.values()) == {1}, figures
    assert [job.status for job in jobs] == [JobStatus.SUCCEEDED] * 2, figures
    assert sum(job.sent_customers for job in jobs) == len(union), figures
    assert sum(job.skipped_customers for job in jobs) == 1500, figures
    assert not StagedCustomer.objects.exclude(outcome__in=(Outcome.SENT, Outcome.SKIPPED)).exists()


def test_a_worker_on_a_lost_host_costs_one_lease_at_default_settings(
    start_worker, start_beat, stager, submitter, settings
):
    settings.MIGRATION_CHUNK_SIZE = 30
    batch = approved_batch(creator=stager, approver=submitter, size=600, prefix="lost")
    sandbox_configure(slow_rate=1.0, slow_s=0.5)
    lease = {"MIGRATION_LEASE_S": DEFAULT_LEASE_S, "MIGRATION_MAX_IN_FLIGHT": 2}
    # Beat and both workers start side by side; the job starts once all three run.
    beat = start_beat(interval_s=settings.MIGRATION_SWEEP_S, ready=False)
    lost = start_worker(MIGRATION_WORKER_HOST=LOST_HOST, ready=False, **lease)
    survivor = start_worker(ready=False, **lease)
    for process in (beat, lost, survivor):
        process.wait_ready()
    job = job_start(batch=batch, user=submitter)

    job_wait(
        job=job,
        until=lambda j: (
            held_chunk(j, owner_prefix=LOST_HOST, left=True) is not None and j.sent_customers >= 60
        ),
        worker=lost,
    )
    cut = held_chunk(job, owner_prefix=LOST_HOST, left=True)
    lost.kill()
    killed_at = time.monotonic()
    job = job_wait(job=job, worker=survivor, timeout_s=DEAD_WORKER_BOUND_S + 30)
    ended_s = round(time.monotonic() - killed_at, 1)
    cut.refresh_from_db()
    figures = figure(
        "lost_host",
        lease_s=DEFAULT_LEASE_S,
        ended_after_kill_s=ended_s,
        cut_chunk_receipts=tally(chunk_receipts(cut)),
        status=job.status,
    )
    assert job.status == JobStatus.SUCCEEDED, figures
    assert ended_s <= DEAD_WORKER_BOUND_S, figures
    assert cut.status == ChunkStatus.SENT, figures
    assert ChunkAttempt.objects.filter(
        chunk=cut, outcome=ChunkAttempt.Outcome.LEASE_EXPIRED
    ).exists(), figures
    assert set(chunk_receipts(cut)) <= {1, 2}, figures
    assert set(receipts(batch)) <= {1, 2}, figures
    assert len(receipts(batch)) == 600, figures


@pytest.mark.parametrize("moment", ["in flight", "waiting for its slot"])
def test_a_worker_killed_on_this_host_is_replaced_without_waiting_for_its_lease(
    start_worker, stager, submitter, settings, moment
):
    settings.MIGRATION_CHUNK_SIZE = 30
    # Six chunks: at least one sent before the kill, the one cut, and the rest after it.
    batch = approved_batch(creator=stager, approver=submitter, size=180, prefix="here")
    sandbox_configure(slow_rate=1.0, slow_s=1.0)
    pace = {
        "MIGRATION_LEASE_S": DEFAULT_LEASE_S,
        "MIGRATION_MIN_INTERVAL_S": 1.5 if moment == "waiting for its slot" else 0,
    }
    worker = start_worker(**pace)
    job = job_start(batch=batch, user=submitter)

    def found(j: MigrationJob) -> JobChunk | None:
        if moment == "in flight":
            return held_chunk(j, left=True)
        return waiting_for_its_slot(j)

    job_wait(job=job, until=lambda j: j.sent_customers and found(j) is not None, worker=worker)
    cut = found(job)
    worker.kill()
    killed_at = time.monotonic()
    # The kill has landed: from here on the sandbox answers at once.
    sandbox_configure(slow_rate=0.0, slow_s=0.0)
    replacement = start_worker(**pace)
    job_wait(
        job=job,
        until=lambda j: JobChunk.objects.filter(pk=cut.pk, status=ChunkStatus.SENT).exists(),
        worker=replacement,
        timeout_s=DEFAULT_LEASE_S,
    )
    sent_after_s = round(time.monotonic() - killed_at, 1)
    job = job_wait(job=job, worker=replacement, timeout_s=DEAD_WORKER_BOUND_S)
    ended_after_s = round(time.monotonic() - killed_at, 1)
    lost = ChunkAttempt.objects.filter(chunk=cut, outcome=ChunkAttempt.Outcome.LEASE_EXPIRED)
    figures = figure(
        "killed_here",
        moment=moment,
        chunk_sent_after_kill_s=sent_after_s,
        job_ended_after_kill_s=ended_after_s,
        lease_s=DEFAULT_LEASE_S,
        cut_chunk_receipts=tally(chunk_receipts(cut)),
    )
    assert job.status == JobStatus.SUCCEEDED, figures
    assert sent_after_s < DEFAULT_LEASE_S, figures
    assert ended_after_s <= DEAD_WORKER_BOUND_S, figures
    if moment == "in flight":
        # Its request may have reached Masivo: sent again, as an unknown outcome.
        assert lost.exists(), figures
        assert set(chunk_receipts(cut)) <= {1, 2}, figures
    else:
        # Its request provably never left: released at once, sent once.
        assert not lost.exists(), figures
        assert chunk_receipts(cut) == [1] * 30, figures


def test_a_stalled_worker_that_lost_its_lease_never_sends(
    start_worker, stager, submitter, settings
):
    settings.MIGRATION_CHUNK_SIZE = 20
    # Ten chunks at one a second: about half are left when the stalled worker wakes up.
    batch = approved_batch(creator=stager, approver=submitter, size=200, prefix="stall")
    sandbox_configure(slow_rate=1.0, slow_s=0.2)
    pace = {"MIGRATION_LEASE_S": 3, "MIGRATION_MIN_INTERVAL_S": 1.0}
    application_name = f"stalled-{uuid.uuid4().hex[:6]}"
    named = {}
    if connection.vendor == "postgresql":
        named["DATABASE_URL"] = f"{database_url_for_worker()}?application_name={application_name}"
    stalled = start_worker(MIGRATION_WORKER_HOST=LOST_HOST, **pace, **named)
    job = job_start(batch=batch, user=submitter)
    job_wait(
        job=job,
        until=lambda j: j.sent_customers and waiting_for_its_slot(j, owner_prefix=LOST_HOST),
        worker=stalled,
    )
    cut = waiting_for_its_slot(job, owner_prefix=LOST_HOST)
    _stop_outside_transactions(stalled, application_name=application_name)
    try:
        healthy = start_worker(**pace)
        job_wait(
            job=job,
            until=lambda j: JobChunk.objects.filter(pk=cut.pk, status=ChunkStatus.SENT).exists(),
            worker=healthy,
            timeout_s=30,
        )
    finally:
        os.killpg(stalled.process.pid, signal.SIGCONT)
    # The stalled worker wakes up holding a lease it lost: give it time to try.
    time.sleep(3)
    job = job_wait(job=job, worker=healthy, timeout_s=90)
    cut.refresh_from_db()
    by_stalled = ChunkAttempt.objects.filter(chunk=cut, worker__startswith=LOST_HOST)
    figures = figure(
        "stalled_worker",
        cut_chunk_receipts=tally(chunk_receipts(cut)),
        attempts_by_stalled_worker=by_stalled.count(),
        requests=SandboxRequest.objects.count(),
    )
    assert job.status == JobStatus.SUCCEEDED, figures
    assert chunk_receipts(cut) == [1] * 20, figures
    assert not by_stalled.exists(), figures
    assert set(receipts(batch)) == {1}, figures
    assert "Traceback" not in stalled.log(), figures


def test_a_warm_shutdown_gives_back_a_chunk_waiting_for_its_slot_at_once(
    start_worker, stager, submitter, settings
):
    settings.MIGRATION_CHUNK_SIZE = 20
    # Five chunks: at least one sent before the shutdown, the one given back, the rest after.
    batch = approved_batch(creator=stager, approver=submitter, size=100, prefix="warm")
    sandbox_configure(slow_rate=1.0, slow_s=0.2)
    pace = {"MIGRATION_LEASE_S": DEFAULT_LEASE_S, "MIGRATION_MIN_INTERVAL_S": 1.4}
    worker = start_worker(**pace)
    job = job_start(batch=batch, user=submitter)
    job_wait(
        job=job,
        until=lambda j: j.sent_customers and waiting_for_its_slot(j) is not None,
        worker=worker,
    )
    cut = waiting_for_its_slot(job)

    os.kill(worker.process.pid, signal.SIGTERM)
    with timed() as took:
        worker.process.wait(timeout=30)
    cut.refresh_from_db()
    figures = figure(
        "warm_shutdown",
        worker_stopped_s=took[0],
        chunk_status=cut.status,
        chunk_owner=cut.lease_owner,
    )
    assert (cut.status, cut.lease_owner, cut.attempts) == (ChunkStatus.PENDING, "", 0), figures
    assert took[0] < 10, figures
    replacement = start_worker(**pace)
    job = job_wait(job=job, worker=replacement, timeout_s=90)
    assert job.status == JobStatus.SUCCEEDED, figures
    assert set(receipts(batch)) == {1}, figures


def test_the_pace_causes_no_429_against_a_server_counting_arrivals_with_jitter(
    start_worker, stager, submitter, settings
):
    interval = 0.5
    settings.MIGRATION_CHUNK_SIZE = 5
    batch = approved_batch(creator=stager, approver=submitter, size=5 * 40, prefix="pace")
    sandbox_configure(
        rate_interval_s=interval,
        rate_clock="arrival",
        jitter_s=0.015,
        slow_rate=1.0,
        slow_s=1.5 * interval,
    )
    worker = start_worker(
        concurrency=3,
        MIGRATION_MIN_INTERVAL_S=interval,
        MIGRATION_MAX_IN_FLIGHT=3,
        MIGRATION_LEASE_S=DEFAULT_LEASE_S,
    )

    job = job_wait(job=job_start(batch=batch, user=submitter), worker=worker, timeout_s=90)

    arrivals = sorted(SandboxRequest.objects.values_list("received_at", flat=True))
    gaps = [(b - a).total_seconds() for a, b in zip(arrivals, arrivals[1:], strict=False)]
    span = (arrivals[-1] - arrivals[0]).total_seconds()
    efficiency = round(100 * len(arrivals) / (1 + span / interval), 1)
    rate_limited = SandboxRequest.objects.filter(status_code=429).count()
    figures = figure(
        "pace_arrival_jitter",
        interval_s=interval,
        requests=len(arrivals),
        rate_limited=rate_limited,
        efficiency_percent=efficiency,
        min_gap_ms=round(1000 * min(gaps), 1),
    )
    assert job.status == JobStatus.SUCCEEDED, figures
    assert rate_limited == 0, figures
    assert min(gaps) >= interval, figures
    assert efficiency >= 90, figures


def _stop_outside_transactions(worker, *, application_name: str) -> None:
    """SIGSTOP ``worker`` at a moment none of its database sessions (PostgreSQL, named
    ``application_name``) is in a statement or a transaction. The scenario is a worker
    stalled while it waits for its slot; one stopped inside a transaction would hold its
    rows (the pacing state's, the job's) against every other worker until it woke up."""
    for _attempt in range(100):
        os.killpg(worker.process.pid, signal.SIGSTOP)
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                "AND state <> 'idle'",
                [application_name],
            )
            if cursor.fetchone()[0] == 0:
                return
        os.killpg(worker.process.pid, signal.SIGCONT)
        time.sleep(0.02)
    pytest.fail("the worker never stood outside a transaction")
