"""Pacing: a job paced at one request every 0.5 s against a sandbox that enforces the same
limit with its own rate limiter (429 for a request that comes too early).

The job has more chunks than two minutes allow (10 customers each: the size of a body
does not matter here), is submitted, and runs on a real Celery worker (two processes, two
chunks in flight, as ``make run``). The sandbox records when each request arrived; the
figure is how many arrived in the two minutes after submission, against the 240 that the
interval allows, and how many the sandbox refused with 429 meanwhile. The two minutes are
the job's: they start when a worker starts it (``started_at``); the time from submission
to that start is reported beside them.
"""

from __future__ import annotations

import datetime as dt
import time

from django.test import override_settings
from django.utils import timezone

from customers.services import batch_approve
from customers.validation import batch_validate
from migrations_jobs.models import MigrationJob
from migrations_jobs.sandbox.models import SandboxRequest
from migrations_jobs.sandbox.services import sandbox_configure, sandbox_reset
from migrations_jobs.services import job_cancel, job_start
from tests.benchmarks import data, harness
from tests.benchmarks.bench_pipeline import _stage
from tests.benchmarks.bench_staging import database_key, new_batch, operator

INTERVAL_S = 0.5
WINDOW_S = 120.0
CHUNK_SIZE = 10
CHUNKS = 260


def pacing(*, run: int) -> dict:
    database = harness.databases()[database_key()]
    files = data.files(customers=CHUNK_SIZE * CHUNKS, root=harness.DATA_DIR, prefix="P")
    batch = new_batch(f"pacing-{run}")
    _stage(batch, files)
    batch_validate(batch=batch, user=batch.created_by)
    approver = operator("bench-approver")
    pace = {"MIGRATION_MIN_INTERVAL_S": INTERVAL_S, "MIGRATION_HOURLY_CAP": 0}
    with override_settings(MIGRATION_CHUNK_SIZE=CHUNK_SIZE):
        # The approval's fingerprint covers the request bodies, so their size too.
        batch = batch_approve(batch=batch, user=approver)
    with (
        harness.server_start(database, workers=2) as server,
        harness.worker_start(database, concurrency=2, server_url=server.url, **pace) as worker,
    ):
        sandbox_reset()
        sandbox_configure(rate_interval_s=INTERVAL_S, hourly_cap=0)
        with override_settings(MIGRATION_CHUNK_SIZE=CHUNK_SIZE, **pace):
            submitted_at = timezone.now()
            job = job_start(batch=batch, user=approver)
        while job.started_at is None:
            if not worker.is_running:
                raise RuntimeError(worker.log()[-3000:])
            time.sleep(0.01)
            job.refresh_from_db()
        started_at = job.started_at
        end = started_at + dt.timedelta(seconds=WINDOW_S)
        while timezone.now() < end + dt.timedelta(seconds=1):
            if not worker.is_running:
                raise RuntimeError(worker.log()[-3000:])
            time.sleep(0.5)
        job_cancel(job=job, user=approver)
        job.refresh_from_db()
    arrivals = SandboxRequest.objects.filter(received_at__gte=started_at, received_at__lt=end)
    allowed = round(WINDOW_S / INTERVAL_S)
    sent = arrivals.count()
    times = sorted(arrivals.values_list("received_at", flat=True))
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    return {
        "requests": sent,
        "allowed": allowed,
        "percent_of_allowed": 100 * sent / allowed,
        "rate_limited": SandboxRequest.objects.filter(status_code=429).count(),
        "started_s": (started_at - submitted_at).total_seconds(),
        "first_request_s": (times[0] - started_at).total_seconds() if times else None,
        "min_gap_s": min(gaps) if gaps else None,
        "mean_gap_s": sum(gaps) / len(gaps) if gaps else None,
        "job_status": job.status if job.status != MigrationJob.Status.CANCELLED else "cancelled",
    }


CASES = {"pacing": pacing}
