"""Admin pages at scale: a batch of 1,000,000 staged customers and a job of 1000 chunks.

``admin_setup`` (once per database) writes the batch with set-based SQL (the import is
measured elsewhere), then a running job: 600 chunks sent (30 of them after a 503), 3
failed after two 422s, 2 being sent and 395 pending, each chunk with its 1000 customer ids
and every attempt recorded; the customers' outcomes follow their chunks. Then it vacuums
and analyzes, as autovacuum would after such a load.

``admin`` (each run) opens, as a superuser in a fresh process, the job's page and the
staged-customer list of the batch (as the batch page links to it), once to warm up and
once measured: the time Django takes to answer and the queries it makes.
"""

from __future__ import annotations

import datetime as dt
import time

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from customers.models import Outcome, StagedCustomer, StagingBatch
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob
from tests.benchmarks.bench_staging import operator

BATCH_NAME = "one-million"
CUSTOMERS = 1_000_000
CHUNKS = 1000
CHUNK_SIZE = CUSTOMERS // CHUNKS
SENT, FAILED, SENDING = 600, 3, 2
RETRIED = 30

_SERIES = {
    "postgresql": "SELECT n FROM generate_series(0, %(last)s) AS n",
    "sqlite": (
        "WITH RECURSIVE series(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM series "
        "WHERE n < %(last)s) SELECT n FROM series"
    ),
}
_PAD = {
    "postgresql": "lpad(n::text, 7, '0')",
    "sqlite": "substr('0000000' || n, -7, 7)",
}


def _insert_customers(batch: StagingBatch) -> None:
    vendor = connection.vendor
    series = _SERIES[vendor] % {"last": CUSTOMERS - 1}
    pad = _PAD[vendor]
    registered = "2023-11-07 05:31:56+00:00"
    concat = "||"
    statement = f"""
        INSERT INTO customers_stagedcustomer (
            batch_id, legacy_id, name, email, gender, dob, registration_date, status,
            document_type, document_number, country, metadata, metrics_updated_at,
            is_excluded, exclusion_reason, is_valid, resend, outcome, outcome_at,
            outcome_error, outcome_job_id, outcome_chunk_id, outcome_maybe_twice,
            outcome_other_job_id
        )
        SELECT %s, 'M' {concat} {pad}, 'Customer ' {concat} n,
            'customer' {concat} n {concat} '@example.com', 'FEMALE', NULL, %s, 'ACTIVE',
            'CC', '' {concat} (10000000 + n), 'CO', NULL, NULL,
            FALSE, '', TRUE, FALSE, %s, NULL, '', NULL, NULL, FALSE, NULL
        FROM ({series}) AS numbers
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(
            statement,
            [
                batch.pk,
                registered
                if vendor == "sqlite"
                else dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=dt.UTC),
                Outcome.NOT_SENT,
            ],
        )


def _job(batch: StagingBatch, user) -> MigrationJob:
    now = timezone.now()
    started = now - dt.timedelta(hours=1)
    job = MigrationJob.objects.create(
        batch=batch,
        started_by=user,
        status=MigrationJob.Status.RUNNING,
        total_customers=CUSTOMERS,
        sent_customers=SENT * CHUNK_SIZE,
        failed_customers=FAILED * CHUNK_SIZE,
        chunk_count=CHUNKS,
        request_count=SENT + RETRIED + 2 * FAILED + SENDING,
        started_at=started,
        heartbeat_at=now,
        settings_used={"chunk_size": CHUNK_SIZE, "min_interval_s": 5.0, "hourly_cap": 250},
    )
    first = StagedCustomer.objects.filter(batch=batch).order_by("pk").values_list("pk", flat=True)
    first_pk = first.first()
    chunks = []
    for index in range(CHUNKS):
        ids = list(range(first_pk + index * CHUNK_SIZE, first_pk + (index + 1) * CHUNK_SIZE))
        at = started + dt.timedelta(seconds=5 * index)
        if index < SENT:
            status, attempts, finished = JobChunk.Status.SENT, 1 + (index < RETRIED), at
        elif index < SENT + FAILED:
            status, attempts, finished = JobChunk.Status.FAILED, 2, at
        elif index < SENT + FAILED + SENDING:
            status, attempts, finished = JobChunk.Status.SENDING, 1, None
        else:
            status, attempts, finished = JobChunk.Status.PENDING, 0, None
        chunks.append(
            JobChunk(
                job=job,
                sequence=index + 1,
                customer_ids=ids,
                customer_count=len(ids),
                status=status,
                attempts=attempts,
                not_before=at,
                finished_at=finished,
                lease_owner="bench:1:worker" if status == JobChunk.Status.SENDING else "",
                lease_expires_at=now + dt.timedelta(minutes=5)
                if status == JobChunk.Status.SENDING
                else None,
                request_started_at=now if status == JobChunk.Status.SENDING else None,
                last_status_code={"sent": 201, "failed": 422}.get(status),
                last_error="HTTP 422: Invalid customer entry" if status == "failed" else "",
            )
        )
    JobChunk.objects.bulk_create(chunks, batch_size=100)
    attempts = []
    for chunk in JobChunk.objects.filter(job=job).exclude(attempts=0).order_by("sequence"):
        for number in range(1, chunk.attempts + 1):
            last = number == chunk.attempts
            if chunk.status == JobChunk.Status.SENT and last:
                code, outcome = 201, ChunkAttempt.Outcome.ACCEPTED
            elif chunk.status == JobChunk.Status.SENT:
                code, outcome = 503, ChunkAttempt.Outcome.RETRY_NOT_SENT
            elif chunk.status == JobChunk.Status.FAILED:
                code, outcome = 422, ChunkAttempt.Outcome.PERMANENT
            else:
                continue
            attempts.append(
                ChunkAttempt(
                    chunk=chunk,
                    number=number,
                    worker="bench:1:worker",
                    customer_count=chunk.customer_count,
                    started_at=chunk.not_before + dt.timedelta(seconds=number),
                    duration_s=0.4,
                    status_code=code,
                    outcome=outcome,
                    response_excerpt="" if code == 201 else '{"error": "Invalid customer entry"}',
                    ratelimit={"limit": 250, "remaining": 100, "reset": 1800},
                )
            )
    ChunkAttempt.objects.bulk_create(attempts, batch_size=500)
    chunk_ids = dict(JobChunk.objects.filter(job=job).values_list("sequence", "pk"))
    sent_last = first_pk + SENT * CHUNK_SIZE - 1
    failed_last = sent_last + FAILED * CHUNK_SIZE
    StagedCustomer.objects.filter(batch=batch, pk__lte=sent_last).update(
        outcome=Outcome.SENT, outcome_at=now, outcome_job_id=job.pk, outcome_chunk_id=chunk_ids[1]
    )
    StagedCustomer.objects.filter(batch=batch, pk__gt=sent_last, pk__lte=failed_last).update(
        outcome=Outcome.FAILED,
        outcome_at=now,
        outcome_error="HTTP 422: Invalid customer entry",
        outcome_job_id=job.pk,
        outcome_chunk_id=chunk_ids[SENT + 1],
    )
    return job


def admin_setup(*, run: int) -> dict:
    user = operator()
    started = time.perf_counter()
    with transaction.atomic():
        batch = StagingBatch.objects.create(
            name=BATCH_NAME, created_by=user, status=StagingBatch.Status.SUBMITTED
        )
        _insert_customers(batch)
        StagingBatch.objects.filter(pk=batch.pk).update(
            customer_count=CUSTOMERS, valid_count=CUSTOMERS
        )
        job = _job(batch, user)
    with connection.cursor() as cursor:
        # What autovacuum does after a bulk load, done now rather than during a measurement.
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    return {"setup_s": time.perf_counter() - started, "job": job.pk, "batch": batch.pk}


def _measure(client: Client, url: str) -> dict:
    warm = client.get(url)
    if warm.status_code != 200:
        raise RuntimeError(f"{url} answered {warm.status_code}")
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        answer = client.get(url)
        seconds = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"{url} answered {answer.status_code}")
    return {"ms": seconds * 1000, "queries": len(captured.captured_queries)}


def admin(*, run: int) -> dict:
    batch = StagingBatch.objects.get(name=BATCH_NAME)
    job = MigrationJob.objects.get(batch=batch)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username="bench-importer"))
    job_page = _measure(client, reverse("admin:migrations_jobs_migrationjob_change", args=[job.pk]))
    customers = _measure(
        client,
        reverse("admin:customers_stagedcustomer_changelist") + f"?batch__id__exact={batch.pk}",
    )
    return {
        "job_page_ms": job_page["ms"],
        "job_page_queries": job_page["queries"],
        "customer_list_ms": customers["ms"],
        "customer_list_queries": customers["queries"],
        "chunks": JobChunk.objects.filter(job=job).count(),
        "customers": StagedCustomer.objects.filter(batch=batch).count(),
    }


CASES = {"admin_setup": admin_setup, "admin": admin}
