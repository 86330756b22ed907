"""A worker SIGKILLed five times during one job, each time replaced by a new worker.

The kills land at chosen moments: while a claimed chunk waits for its pacing slot (before
its request), while a request is in flight, after Masivo's 201 came back but before the
worker committed it, and twice at random. No operator acts: the new worker's start-up
sweep and the leases of the dead worker's chunks are all the job gets.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
from collections.abc import Iterator

import pytest
from django.db import connection
from django.utils import timezone

from customers.models import Outcome, StagedCustomer
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob, PacingState
from migrations_jobs.sandbox.models import SandboxCustomer
from migrations_jobs.sandbox.services import sandbox_configure
from migrations_jobs.services import job_start
from tests.reliability.conftest import assert_delivered, delivery, figure, timed
from tests.worker import approved_batch, job_wait

pytestmark = pytest.mark.worker

ChunkStatus = JobChunk.Status
CUSTOMERS = 1500
CHUNK_SIZE = 30
# Until the last kill, every answer comes this long after Masivo kept the customers.
ANSWER_DELAY_S = 0.5
LEASE_S = 3
ACCEPTED_LINE = "Masivo migrate answered 201"


@contextlib.contextmanager
def commits_blocked(job: MigrationJob) -> Iterator[None]:
    """Hold what a worker must take to record an answer: the job's row lock on PostgreSQL,
    the database's write lock on SQLite. Reads go on."""
    other = connection.copy()
    with other.cursor() as cursor:
        if other.vendor == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")
        else:
            cursor.execute("BEGIN")
            table = MigrationJob._meta.db_table
            cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [job.pk])  # noqa: S608
        try:
            yield
        finally:
            cursor.execute("ROLLBACK")
    other.close()


def in_flight(job: MigrationJob, *, started_within_s: float | None = None) -> JobChunk | None:
    """A chunk whose request has left (no longer ago than ``started_within_s``)."""
    chunks = JobChunk.objects.filter(
        job=job, status=ChunkStatus.SENDING, request_left_at__isnull=False
    )
    if started_within_s is not None:
        since = timezone.now() - dt.timedelta(seconds=started_within_s)
        chunks = chunks.filter(request_left_at__gte=since)
    return chunks.first()


def waiting_for_its_slot(job: MigrationJob) -> JobChunk | None:
    """A claimed chunk whose request has not left, with its pacing slot still 0.3 s away."""
    state = PacingState.objects.first()
    if state is None or state.next_slot_at is None:
        return None
    if state.next_slot_at < timezone.now() + dt.timedelta(seconds=0.3):
        return None
    return JobChunk.objects.filter(
        job=job, status=ChunkStatus.SENDING, request_started_at__isnull=True
    ).first()


def sent_chunks(job: MigrationJob) -> int:
    return JobChunk.objects.filter(job=job, status=ChunkStatus.SENT).count()


def progressed(job: MigrationJob, since: int, *, worker, chunks: int = 1) -> None:
    job_wait(job=job, until=lambda j: sent_chunks(j) >= since + chunks, worker=worker)


def is_sent(chunk: JobChunk) -> bool:
    return JobChunk.objects.filter(pk=chunk.pk, status=ChunkStatus.SENT).exists()


def lease_lost(chunk: JobChunk) -> bool:
    return ChunkAttempt.objects.filter(
        chunk=chunk, outcome=ChunkAttempt.Outcome.LEASE_EXPIRED
    ).exists()


def receipts(chunk: JobChunk) -> list[int]:
    ids = StagedCustomer.objects.filter(pk__in=chunk.customer_ids).values_list(
        "legacy_id", flat=True
    )
    return sorted(
        SandboxCustomer.objects.filter(legacy_id__in=list(ids)).values_list(
            "times_received", flat=True
        )
    )


def test_worker_killed_five_times_the_job_ends_with_nothing_lost(
    start_worker, stager, submitter, settings
):
    settings.MIGRATION_CHUNK_SIZE = CHUNK_SIZE
    seed = random.randrange(1_000_000)
    moments = random.Random(seed)
    batch = approved_batch(creator=stager, approver=submitter, size=CUSTOMERS, prefix="kill")
    sandbox_configure(slow_rate=1.0, slow_s=ANSWER_DELAY_S)
    kills: list[str] = []

    with timed() as took:
        # 1. Before a request: pacing holds a claimed chunk for up to a second.
        worker = start_worker(MIGRATION_LEASE_S=LEASE_S, MIGRATION_MIN_INTERVAL_S=1.0)
        job = job_start(batch=batch, user=submitter)
        progressed(job, 0, worker=worker)
        job_wait(job=job, until=lambda j: waiting_for_its_slot(j) is not None, worker=worker)
        before = waiting_for_its_slot(job)
        worker.kill()
        before.refresh_from_db()
        assert (before.status, before.request_started_at, before.attempts) == (
            ChunkStatus.SENDING,
            None,
            0,
        ), "the kill did not land before the request"
        kills.append("before a request")

        # 2. During a request: Masivo keeps the customers, the answer is still on its way.
        worker = start_worker(MIGRATION_LEASE_S=LEASE_S)
        # The new worker takes back the chunk of the first kill once its lease ends.
        job_wait(job=job, until=lambda j: is_sent(before), worker=worker)
        assert not lease_lost(before), "the chunk killed before its request was counted as sent"
        job_wait(
            job=job,
            until=lambda j: in_flight(j, started_within_s=ANSWER_DELAY_S / 3) is not None,
            worker=worker,
        )
        during = in_flight(job)
        worker.kill()
        kills.append("during a request")

        # 3. After the 201, before its commit: the worker holds the answer but cannot
        # record it; it dies there.
        worker = start_worker(MIGRATION_LEASE_S=LEASE_S, loglevel="DEBUG", DJANGO_LOG_LEVEL="DEBUG")
        job_wait(job=job, until=lambda j: is_sent(during), worker=worker)
        accepted_before = worker.log().count(ACCEPTED_LINE)
        job_wait(job=job, until=lambda j: in_flight(j) is not None, worker=worker)
        after_201 = in_flight(job)
        # Masivo kept the chunk's customers; its answer is on the way (ANSWER_DELAY_S).
        job_wait(job=job, until=lambda j: receipts(after_201) == [1] * CHUNK_SIZE, worker=worker)
        with commits_blocked(job):
            deadline = time.monotonic() + 10
            while worker.log().count(ACCEPTED_LINE) == accepted_before:
                assert time.monotonic() < deadline, "the 201 never reached the worker"
                time.sleep(0.02)
            time.sleep(0.2)
            worker.kill()
        after_201.refresh_from_db()
        assert after_201.status == ChunkStatus.SENDING, "the 201 was committed before the kill"
        assert receipts(after_201) == [1] * CHUNK_SIZE, "Masivo did not keep the chunk"
        assert not StagedCustomer.objects.filter(
            pk__in=after_201.customer_ids, outcome=Outcome.SENT
        ).exists()
        kills.append("after the 201, before the commit")

        # 4 and 5. At random moments.
        for _round in range(2):
            worker = start_worker(MIGRATION_LEASE_S=LEASE_S)
            job_wait(job=job, until=lambda j: is_sent(after_201), worker=worker)
            progressed(job, sent_chunks(job), worker=worker)
            pause = round(moments.uniform(0.0, 1.0), 2)
            time.sleep(pause)
            worker.kill()
            kills.append(f"random, {pause} s after the worker's first chunk")

        # The kills are over: the last worker sends the rest of the job, answered at once.
        job.refresh_from_db()
        assert not job.is_terminal, "the job ended before the last kill"
        sandbox_configure(slow_rate=0.0, slow_s=0.0)
        worker = start_worker(MIGRATION_LEASE_S=LEASE_S)
        job = job_wait(job=job, worker=worker, timeout_s=90)

    result = delivery(batch=batch, job=job)
    lost_leases = ChunkAttempt.objects.filter(
        chunk__job=job, outcome=ChunkAttempt.Outcome.LEASE_EXPIRED
    )
    figures = figure(
        "worker_killed",
        seed=seed,
        kills=len(kills),
        seconds=took[0],
        lease_expired_attempts=lost_leases.count(),
        summary=result.text(),
    )
    assert len(kills) == 5, figures
    assert_delivered(result, job=job, figures=figures)
    # The chunk killed before its request was taken back quietly and sent once.
    assert not lease_lost(before), figures
    assert receipts(before) == [1] * CHUNK_SIZE, figures
    # The chunks cut short after their request left were sent again: at least once, as
    # promised, and counted as retried after an unknown outcome.
    for chunk in (during, after_201):
        assert lease_lost(chunk), figures
        chunk.refresh_from_db()
        assert chunk.status == ChunkStatus.SENT, figures
        assert chunk.unknown_outcome_retries >= 1, figures
    assert receipts(after_201) == [2] * CHUNK_SIZE, figures
    assert result.resent_requests >= 1, figures
