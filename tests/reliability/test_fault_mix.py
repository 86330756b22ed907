"""Ten thousand customers through a sandbox that answers 500, 429 and too late at random."""

from __future__ import annotations

import pytest

from migrations_jobs.models import JobChunk
from migrations_jobs.sandbox.models import SandboxRequest
from migrations_jobs.sandbox.services import (
    sandbox_arrivals,
    sandbox_configure,
    sandbox_script,
)
from migrations_jobs.services import job_start
from tests.reliability.conftest import assert_delivered, delivery, figure, timed
from tests.worker import WORKER_DEFAULTS, approved_batch, job_wait

pytestmark = pytest.mark.worker

CUSTOMERS = 10_000
CHUNK_SIZE = 100
READ_TIMEOUT_S = 0.4
SLOW_ANSWER_S = 1.0


def test_ten_thousand_customers_through_random_faults_all_arrive(
    start_worker, stager, submitter, settings
):
    settings.MIGRATION_CHUNK_SIZE = CHUNK_SIZE
    batch = approved_batch(creator=stager, approver=submitter, size=CUSTOMERS, prefix="mix")
    # One of each fault for certain, then drawn in this order for each request: 20%
    # answered 500, then 10% answered 429 with Retry-After 1, then 5% kept and answered a
    # second after the client stopped waiting.
    sandbox_script(status_code=500)
    sandbox_script(status_code=429, retry_after_s=1)
    sandbox_script(status_code=201, delay_s=SLOW_ANSWER_S)
    sandbox_configure(
        fail_500_rate=0.2, fail_429_rate=0.1, slow_rate=0.05, slow_s=SLOW_ANSWER_S, retry_after_s=1
    )
    worker = start_worker(
        concurrency=2,
        MASIVO_READ_TIMEOUT_S=READ_TIMEOUT_S,
        MASIVO_TOTAL_TIMEOUT_S=2 * READ_TIMEOUT_S,
    )

    with timed() as took:
        job = job_wait(job=job_start(batch=batch, user=submitter), worker=worker, timeout_s=150)

    result = delivery(batch=batch, job=job)
    statuses = sandbox_arrivals()["status_counts"]
    late = SandboxRequest.objects.filter(delay_s__gt=0).count()
    figures = figure(
        "fault_mix",
        seconds=took[0],
        requests=result.requests,
        answered_500=statuses.get(500, 0),
        answered_429=statuses.get(429, 0),
        answered_late=late,
        chunks=JobChunk.objects.filter(job=job).count(),
        summary=result.text(),
    )
    assert_delivered(result, job=job, figures=figures)
    # The faults did happen, and none exhausted a chunk's attempts.
    assert statuses.get(500, 0) >= 10, figures
    assert statuses.get(429, 0) >= 3, figures
    # Every 500 and every late answer may have been processed: each was retried as an
    # unknown outcome.
    assert late >= 1, figures
    assert result.retried_unknown >= statuses.get(500, 0) + late, figures
    assert result.max_attempts <= int(WORKER_DEFAULTS["MIGRATION_MAX_ATTEMPTS"]), figures
    assert job.request_count == result.requests, figures
