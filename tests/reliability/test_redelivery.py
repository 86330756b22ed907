"""The same work delivered twice at once sends one request.

Celery delivers at least once (``acks_late``, a Redis visibility timeout, a worker lost
before its ack), so a task may run twice at the same moment: twice the same send of a
chunk, or twice the same run of a job on two pool processes.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection

from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob
from migrations_jobs.sandbox.models import SandboxRequest
from migrations_jobs.sandbox.services import sandbox_arrivals, sandbox_configure
from migrations_jobs.services import chunk_claim, chunk_send, job_start, job_transition
from migrations_jobs.tasks import job_run
from tests.reliability.conftest import assert_delivered, delivery, figure
from tests.worker import approved_batch, broker_purge, job_wait

ChunkStatus = JobChunk.Status


def twice_at_once(work) -> list:
    """Run ``work()`` in two threads released together; their results."""
    barrier = threading.Barrier(2)
    results: list = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(work())
        except BaseException as error:  # noqa: BLE001 - reported to the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def test_the_same_send_of_a_chunk_twice_at_once_makes_one_request(
    masivo, stager, submitter, settings
):
    settings.MIGRATION_MIN_INTERVAL_S = 0
    settings.MIGRATION_HOURLY_CAP = 0
    settings.MIGRATION_CHUNK_SIZE = 10
    batch = approved_batch(creator=stager, approver=submitter, size=10, prefix="twice")
    job = job_start(batch=batch, user=submitter)
    broker_purge()  # this test is the worker
    job_transition(pk=job.pk, to=MigrationJob.Status.RUNNING)
    # Slow answers keep the first request in flight while the second delivery runs.
    sandbox_configure(slow_rate=1.0, slow_s=0.5)
    worker = f"redelivered:{uuid.uuid4().hex[:8]}"
    chunk = chunk_claim(job_id=job.pk, worker=worker)

    reports = twice_at_once(lambda: chunk_send(chunk_id=chunk.pk, worker=worker))

    chunk.refresh_from_db()
    requests = SandboxRequest.objects.count()
    figures = figure(
        "redelivery[same chunk send]",
        requests=requests,
        attempts=chunk.attempts,
        outcomes=sorted(r.outcome for r in reports),
    )
    assert requests == 1, figures
    assert chunk.status == ChunkStatus.SENT, figures
    assert chunk.attempts == 1, figures
    assert ChunkAttempt.objects.filter(chunk=chunk).count() == 1, figures
    assert sorted(r.outcome for r in reports) == ["", ChunkAttempt.Outcome.ACCEPTED], figures
    assert sandbox_arrivals()["duplicate_receipts"] == 0, figures


@pytest.mark.worker
def test_the_same_job_run_delivered_twice_at_once_sends_each_chunk_once(
    start_worker, stager, submitter, settings
):
    settings.MIGRATION_CHUNK_SIZE = 25
    batch = approved_batch(creator=stager, approver=submitter, size=200, prefix="dup")
    sandbox_configure(slow_rate=1.0, slow_s=0.2)
    job = job_start(batch=batch, user=submitter)
    # Besides the runs job_start enqueued, the same message twice more, as a broker
    # redelivering it would: same task id, same arguments.
    task_id = str(uuid.uuid4())
    for _copy in range(2):
        job_run.apply_async(args=(job.pk,), task_id=task_id)
    worker = start_worker(concurrency=4, MIGRATION_MAX_IN_FLIGHT=4)

    job = job_wait(job=job, worker=worker, timeout_s=60)

    result = delivery(batch=batch, job=job)
    sizes = sorted(
        SandboxRequest.objects.filter(is_accepted=True).values_list("customer_count", flat=True)
    )
    figures = figure(
        "redelivery[same job run]",
        requests=result.requests,
        chunks=job.chunk_count,
        copies_received=worker.log().count(f"job_run[{task_id}] received"),
        summary=result.text(),
    )
    assert worker.log().count(f"job_run[{task_id}] received") == 2, figures
    assert_delivered(result, job=job, figures=figures)
    assert result.requests == job.chunk_count == 8, figures
    assert sizes == [25] * 8, figures
    assert result.duplicate_receipts == 0, figures
