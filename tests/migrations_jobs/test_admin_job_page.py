"""The job page as an operator reads it: failures in words with Masivo's answer beside
them, "Retry failed chunks" only when a retry can help (and why not otherwise), failed
customers first, "Resume" only when no live worker holds the job's work, chunks with their
finish time and worker apart, and the live view that renders the page's changing parts."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import StagedCustomer
from customers.services import batch_approve
from migrations_jobs import services
from migrations_jobs.exports import JOB_CUSTOMER_COLUMNS
from migrations_jobs.models import JobChunk, MigrationJob
from migrations_jobs.sandbox.services import sandbox_configure, sandbox_script
from migrations_jobs.services import job_needs_resume, job_retry_failed, job_start
from migrations_jobs.services.base import ERR_RETRY_CANNOT_HELP
from tests.factories import UserFactory
from tests.migrations_jobs.test_admin_jobs import (
    OPERATOR_PERMS,
    action_url,
    change_url,
    make_job,
    progress_url,
)
from tests.migrations_jobs.test_jobs import run_to_end
from tests.worker import mark_validated, validated_batch

JobStatus = MigrationJob.Status
ChunkStatus = JobChunk.Status
REFUSED_WORDS = (
    "Masivo refused this chunk&#x27;s request as invalid (422): “Invalid customer entry: A "
    "customer was refused by the account”."
)
CANNOT_HELP = (
    "This customer is not acceptable to Masivo: fix it in a new batch; retrying cannot help."
)


@pytest.fixture
def operator(db):
    return UserFactory(username="operator", perms=OPERATOR_PERMS)


@pytest.fixture
def as_user():
    """``as_user(user)``: an API client authenticated as ``user``."""

    def login(user) -> APIClient:
        api = APIClient()
        api.force_authenticate(user)
        return api

    return login


def engine_job(*, operator, settings, size: int, refuse: list[str] = (), scripted=()):
    """A job of ``size`` customers in chunks of 3, worked to its end against the sandbox,
    which refuses ``refuse`` (422) and first answers ``scripted`` status codes."""
    settings.MIGRATION_CHUNK_SIZE = 3
    boss = UserFactory(username="boss", is_superuser=True)
    batch = validated_batch(creator=operator, size=size, name="spring")
    StagedCustomer.objects.filter(batch=batch).update(name="Ana Pérez")
    batch = batch_approve(batch=mark_validated(batch), user=boss)
    sandbox_configure(reject_ids=list(refuse))
    for status_code in scripted:
        sandbox_script(status_code=status_code)
    return run_to_end(job_start(batch=batch, user=boss))


def offered(client, job) -> set[str]:
    page = client.get(change_url(job)).content.decode()
    return {name for name in ("cancel", "retry-failed", "resume") if action_url(job, name) in page}


# --- failures in words -------------------------------------------------------------------


def test_a_refused_customer_reads_what_masivo_refused_and_retry_is_not_offered(
    client, operator, sandboxed, quick
):
    job = engine_job(operator=operator, settings=quick, size=3, refuse=["legacy-000001"])
    client.force_login(operator)

    page = client.get(change_url(job)).content.decode()

    assert job.status == JobStatus.PARTIALLY_FAILED
    failed = JobChunk.objects.get(job=job, status=ChunkStatus.FAILED)
    assert failed.is_permanent
    assert REFUSED_WORDS in page
    assert CANNOT_HELP in page
    # The raw answer stays available, folded, never as the headline.
    raw = page[page.index('<details class="console-raw">') :]
    assert "Masivo's answer, as received" in raw[:200]
    assert "HTTP 422: {" not in page
    assert action_url(job, "retry-failed") not in page
    assert (
        "“Retry failed chunks” is not offered: Masivo refused the failed chunk for good, so "
        "sending it again cannot succeed." in page
    )
    # The failed customers come first, with their names.
    assert page.index('id="failed-customers"') < page.index('id="chunks"')
    failed_list = page[page.index('id="failed-customers"') : page.index('id="chunks"')]
    assert "legacy-000001" in failed_list
    assert "Ana Pérez" in failed_list


def test_only_chunks_that_failed_for_a_passing_reason_are_retried(
    client, operator, sandboxed, quick
):
    quick.MIGRATION_MAX_ATTEMPTS = 1
    job = engine_job(
        operator=operator, settings=quick, size=6, refuse=["legacy-000004"], scripted=[503]
    )
    client.force_login(operator)
    transient = JobChunk.objects.get(job=job, status=ChunkStatus.FAILED, is_permanent=False)
    refused = JobChunk.objects.get(job=job, status=ChunkStatus.FAILED, is_permanent=True)

    page = client.get(change_url(job)).content.decode()

    assert job.failed_customers == 4
    assert (
        "Masivo did not accept this chunk in 1 attempt; the last one: Masivo was unavailable "
        "(503): “Service Unavailable: Scripted sandbox answer”." in page
    )
    assert "This may pass: a retry may succeed (“Retry failed chunks”)." in page
    assert action_url(job, "retry-failed") in page
    assert "the 1 chunk Masivo refused for good stays failed" in page
    asked = client.get(action_url(job, "retry-failed")).content.decode()
    assert "1 failed chunk with 3 customers is sent again as a new chunk." in asked
    assert "1 chunk that Masivo refused for good stays failed" in asked

    client.post(action_url(job, "retry-failed"))

    assert list(JobChunk.objects.filter(parent=transient).values_list("status", flat=True)) == [
        ChunkStatus.PENDING
    ]
    assert not JobChunk.objects.filter(parent=refused).exists()
    job.refresh_from_db()
    assert (job.status, job.failed_customers) == (JobStatus.RUNNING, 1)


def test_retrying_a_job_whose_failed_chunks_were_all_refused_says_why_not(
    client, operator, sandboxed, quick, as_user
):
    job = engine_job(operator=operator, settings=quick, size=3, refuse=["legacy-000002"])
    message = ERR_RETRY_CANNOT_HELP % {"job": job.pk}

    with pytest.raises(services.JobStateError) as refused:
        job_retry_failed(job=job, user=operator)
    answer = as_user(operator).post(reverse("api:job-retry-failed", args=[job.pk]))

    assert refused.value.messages == [message]
    assert (answer.status_code, answer.json()["details"]) == (409, message)


def test_failed_customers_csv_has_the_name_the_words_and_masivos_answer(
    client, operator, sandboxed, quick, as_user
):
    job = engine_job(operator=operator, settings=quick, size=3, refuse=["legacy-000000"])
    client.force_login(operator)
    admin_csv = reverse("admin:migrations_jobs_migrationjob_failed_csv", args=[job.pk])
    api_csv = reverse("api:job-failed-customers-csv", args=[job.pk])

    files = [
        b"".join(client.get(admin_csv).streaming_content).decode(),
        b"".join(as_user(operator).get(api_csv).streaming_content).decode(),
    ]

    for text in files:
        header, *rows = csv.reader(io.StringIO(text))
        assert header == JOB_CUSTOMER_COLUMNS
        row = dict(zip(header, rows[0], strict=True))
        assert (row["legacy_id"], row["name"]) == ("legacy-000000", "Ana Pérez")
        assert row["detail"].startswith("Masivo refused this chunk's request as invalid (422)")
        assert row["detail"].endswith("retrying cannot help.")
        assert json.loads(row["response"])["error"] == "Invalid customer entry"
    listed = as_user(operator).get(reverse("api:job-failed-customers", args=[job.pk])).json()
    assert listed["results"][0]["explanation"] == dict(zip(header, rows[0], strict=True))["detail"]


# --- resume ------------------------------------------------------------------------------


def test_resume_is_offered_only_when_no_live_worker_holds_the_work(client, operator, as_user):
    now = timezone.now()
    job = make_job(started_by=operator, chunks=[("sent", 5), ("sending", 5), ("pending", 5)])
    sending = JobChunk.objects.filter(job=job, status=ChunkStatus.SENDING)
    sending.update(lease_owner="elsewhere:1:run", lease_expires_at=now + dt.timedelta(seconds=20))
    MigrationJob.objects.filter(pk=job.pk).update(heartbeat_at=now)
    client.force_login(operator)
    detail = reverse("api:job-detail", args=[job.pk])

    assert offered(client, job) == {"cancel"}  # a worker is sending it
    assert as_user(operator).get(detail).json()["needs_resume"] is False

    sending.update(lease_expires_at=now - dt.timedelta(seconds=1))  # its worker died

    assert offered(client, job) == {"cancel", "resume"}
    assert as_user(operator).get(detail).json()["needs_resume"] is True


def test_a_job_between_two_requests_does_not_need_resuming_until_its_worker_goes_quiet(operator):
    job = make_job(started_by=operator, chunks=[("sent", 5), ("pending", 5)])
    MigrationJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    job.refresh_from_db()
    assert not job_needs_resume(job=job)

    MigrationJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - dt.timedelta(minutes=5)
    )
    job.refresh_from_db()
    assert job_needs_resume(job=job)
    ended = make_job(started_by=operator, status=JobStatus.SUCCEEDED, chunks=[("sent", 5)])
    assert not job_needs_resume(job=ended)


# --- the chunk table and the live view ----------------------------------------------------


def test_chunk_table_shows_the_finish_time_and_the_worker_apart(client, operator):
    job = make_job(started_by=operator, chunks=[("sent", 5), ("sending", 5)], sent=5)
    finished = timezone.make_aware(dt.datetime(2026, 3, 4, 5, 6, 7))  # noqa: DTZ001
    JobChunk.objects.filter(job=job, sequence=1).update(finished_at=finished)
    JobChunk.objects.filter(job=job, sequence=2).update(
        lease_owner="host-a:4242:run", lease_expires_at=timezone.now() + dt.timedelta(seconds=20)
    )
    client.force_login(operator)

    page = client.get(change_url(job)).content.decode()

    def cell(chunk: int, name: str) -> str:
        row = page[page.index(f'id="chunk-{chunk}"') :]
        html = row[row.index(f'class="{name}') :]
        return re.sub(r"<[^>]+>", "", html[html.index(">") + 1 : html.index("</td>")])

    assert cell(1, "console-chunk-finished") == "2026-03-04 05:06:07"
    assert cell(2, "console-chunk-finished") == "—"
    assert cell(1, "console-worker") == "—"
    assert cell(2, "console-worker").startswith("host-a:4242:run")
    assert "holds it until" in cell(2, "console-worker")


def test_progress_view_renders_the_parts_that_change_while_the_job_runs(client, operator):
    job = make_job(started_by=operator, chunks=[("sent", 5), ("failed", 5), ("pending", 5)])
    MigrationJob.objects.filter(pk=job.pk).update(sent_customers=5, failed_customers=5)
    client.force_login(operator)

    running = client.get(progress_url(job), {"chunks": "failed"}).json()

    assert set(running["html"]) == {"tools", "phases", "notes", "failed", "chunks", "skipped"}
    assert action_url(job, "cancel") in running["html"]["tools"]
    assert 'id="chunk-2"' in running["html"]["chunks"]
    assert 'id="chunk-1"' not in running["html"]["chunks"]  # the page's own filter
    assert "5 failed customers" in running["html"]["failed"]
    assert running["fields"]["finished_at"] == "-"

    JobChunk.objects.filter(job=job, status=ChunkStatus.PENDING).update(
        status=ChunkStatus.SENT, finished_at=timezone.now()
    )
    services.job_finish_if_done(job_id=job.pk)
    ended = client.get(progress_url(job)).json()

    assert ended["is_active"] is False
    assert ended["status_label"] == "Partially failed"
    assert action_url(job, "cancel") not in ended["html"]["tools"]
    assert ended["html"]["chunks"].count('data-status="sent"') == 2
    assert ended["fields"]["finished_at"] != "-"
