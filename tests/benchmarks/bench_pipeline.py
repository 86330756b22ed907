"""Validation, payloads and sending, on one batch of 100,000 customers with their children.

Each run takes the batch that the admin import staged in the same run (the benchmark's
files, see bench_staging), then measures:

- validation: ``batch_validate`` of the whole batch;
- payload: one request body of 1000 customers from staging (``customers_body``, as a
  worker builds it before sending), and the queries it takes for 1 to 1000 customers;
- sending (PostgreSQL): the approved batch submitted and sent to the sandbox by a real
  Celery worker, no pacing and no latency, from submission to the job's end; and the
  reference script (``references.plain_send``) sending the same files to the same
  sandbox. The two alternate in order from run to run.
"""

from __future__ import annotations

import statistics
import time

from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext

from customers.models import StagingBatch
from customers.payload import batch_chunks, customers_body
from customers.services import batch_approve, batch_validate
from customers.staging import batch_stage_file
from migrations_jobs.models import MigrationJob
from migrations_jobs.sandbox.models import SandboxCustomer, SandboxRequest
from migrations_jobs.sandbox.services import sandbox_reset
from migrations_jobs.services import job_start
from tests.benchmarks import data, harness, references
from tests.benchmarks.bench_staging import CUSTOMERS, database_key, new_batch, operator

PAYLOAD_SIZES = (1, 10, 100, 1000)
PAYLOAD_REPEATS = 7
JOB_TIMEOUT_S = 900.0


def _stage(batch: StagingBatch, files: dict) -> None:
    for kind in data.KINDS:
        result = batch_stage_file(
            batch=batch,
            kind=kind,
            file_name=files[kind].name,
            content=files[kind],
            user=batch.created_by,
        )
        if result.has_errors():
            raise RuntimeError(result.messages()[:5])


def _payload_figures(batch: StagingBatch) -> dict:
    ids = next(batch_chunks(batch=batch, chunk_size=1000))
    timings = []
    for _ in range(PAYLOAD_REPEATS):
        started = time.perf_counter()
        body = customers_body(ids)
        timings.append(time.perf_counter() - started)
    queries = {}
    for size in PAYLOAD_SIZES:
        reset_queries()
        with CaptureQueriesContext(connection) as captured:
            customers_body(ids[:size])
        queries[size] = len(captured.captured_queries)
    return {
        "payload_ms": statistics.median(timings) * 1000,
        "payload_first_ms": timings[0] * 1000,
        "payload_bytes": len(body),
        "payload_queries": queries,
        "payload_queries_constant": len(set(queries.values())) == 1,
    }


def _console_send(batch: StagingBatch, approver, server_url: str) -> float:
    database = harness.databases()[database_key()]
    sandbox_reset()
    with harness.worker_start(
        database,
        concurrency=2,
        server_url=server_url,
        MIGRATION_MIN_INTERVAL_S=0,
        MIGRATION_HOURLY_CAP=0,
    ) as worker:
        started = time.perf_counter()
        job = job_start(batch=batch, user=approver)
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while not job.is_terminal:
            if time.monotonic() > deadline or not worker.is_running:
                raise RuntimeError(f"job #{job.pk} {job.status}: {worker.log()[-3000:]}")
            time.sleep(0.02)
            job.refresh_from_db()
        seconds = time.perf_counter() - started
    if job.status != MigrationJob.Status.SUCCEEDED or job.sent_customers != job.total_customers:
        raise RuntimeError(f"job #{job.pk} {job.status}: {job.sent_customers} sent")
    _check_arrivals(job.total_customers)
    return seconds


def _reference_send(files: dict, server_url: str) -> float:
    sandbox_reset()
    sent = references.plain_send(
        paths=files,
        base_url=f"{server_url}/sandbox/api/storefront/v1",
        auth_url=f"{server_url}/sandbox/auth/authorize",
        api_key=harness.SANDBOX_API_KEY,
    )
    _check_arrivals(sent["customers"])
    return sent["seconds"]


def _check_arrivals(expected: int) -> None:
    received = SandboxCustomer.objects.count()
    refused = SandboxRequest.objects.filter(is_accepted=False).count()
    if received != expected or refused:
        raise RuntimeError(
            f"the sandbox has {received} of {expected} customers, {refused} refusals"
        )


def pipeline(*, run: int) -> dict:
    """On the batch that ``staging_console`` staged through the admin in this run (or, run
    alone, on a batch staged here)."""
    key = database_key()
    files = data.files(customers=CUSTOMERS[key], root=harness.DATA_DIR)
    batch = StagingBatch.objects.filter(name=f"console-{run}").first()
    if batch is None:
        batch = new_batch(f"pipeline-{run}")
        _stage(batch, files)

    started = time.perf_counter()
    summary = batch_validate(batch=batch, user=batch.created_by)
    figures: dict = {"validation_s": time.perf_counter() - started, "customers": CUSTOMERS[key]}
    if summary.valid != CUSTOMERS[key] or not summary.is_validated:
        raise RuntimeError(f"validation: {summary}")
    figures.update(_payload_figures(batch))

    if key != "postgresql":
        return figures
    approver = operator("bench-approver")
    batch = batch_approve(batch=batch, user=approver)
    database = harness.databases()[key]
    with harness.server_start(database, workers=2) as server:
        if run % 2:
            figures["send_s"] = _console_send(batch, approver, server.url)
            figures["reference_send_s"] = _reference_send(files, server.url)
        else:
            figures["reference_send_s"] = _reference_send(files, server.url)
            figures["send_s"] = _console_send(batch, approver, server.url)
    figures["send_ratio"] = figures["send_s"] / figures["reference_send_s"]
    return figures


CASES = {"pipeline": pipeline}
