"""Job history and job pages in the admin: progress, time left, chunks and attempts, the
live progress view, cancel / retry failed / resume through confirmation pages, and the
failed customers as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from customers.models import Outcome, StagedCustomer, StagingBatch
from migrations_jobs.exports import JOB_CUSTOMER_COLUMNS
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob
from migrations_jobs.selectors import job_eta_s, pace_duration_s
from tests.factories import BatchFactory, UserFactory

pytestmark = pytest.mark.django_db
JobStatus = MigrationJob.Status
ChunkStatus = JobChunk.Status

VIEW_JOB = "migrations_jobs.view_migrationjob"
OPERATOR_PERMS = [
    VIEW_JOB,
    "migrations_jobs.cancel_migrationjob",
    "migrations_jobs.retry_migrationjob",
    "customers.view_stagedcustomer",
    "customers.view_stagingbatch",
]


@pytest.fixture
def operator(db):
    return UserFactory(username="operator", perms=OPERATOR_PERMS)


@pytest.fixture
def viewer(db):
    """May look at jobs, and nothing more."""
    return UserFactory(username="viewer", perms=[VIEW_JOB])


@pytest.fixture
def paced(settings):
    """The contract's default pace: one request every 5 s, 250 an hour."""
    settings.MIGRATION_MIN_INTERVAL_S = 5
    settings.MIGRATION_HOURLY_CAP = 250
    return settings


def make_job(
    *,
    started_by,
    status: str = JobStatus.RUNNING,
    chunks: list[tuple[str, int]] = (),
    sent: int = 0,
    failed: int = 0,
    batch: StagingBatch | None = None,
    started_ago: dt.timedelta = dt.timedelta(minutes=2),
    finished_ago: dt.timedelta | None = None,
) -> MigrationJob:
    """A job with ``chunks`` (status, customers) written directly, as the engine leaves
    them; counts as given."""
    now = timezone.now()
    batch = batch or BatchFactory(created_by=started_by, status=StagingBatch.Status.SUBMITTED)
    job = MigrationJob.objects.create(
        batch=batch,
        started_by=started_by,
        status=status,
        total_customers=sum(count for _status, count in chunks),
        sent_customers=sent,
        failed_customers=failed,
        chunk_count=len(chunks),
        request_count=sum(1 for s, _count in chunks if s not in ("pending",)),
        started_at=now - started_ago,
        finished_at=(now - finished_ago) if finished_ago is not None else None,
    )
    JobChunk.objects.bulk_create(
        [
            JobChunk(
                job=job,
                sequence=number,
                status=chunk_status,
                customer_count=count,
                attempts=0 if chunk_status == "pending" else 1,
                not_before=now,
                finished_at=now if chunk_status in ("sent", "failed") else None,
            )
            for number, (chunk_status, count) in enumerate(chunks, start=1)
        ],
        batch_size=500,
    )
    return job


def add_attempts(job: MigrationJob, *, sequences, **fields) -> None:
    chunks = JobChunk.objects.filter(job=job, sequence__in=list(sequences))
    ChunkAttempt.objects.bulk_create(
        [
            ChunkAttempt(
                chunk=chunk,
                number=1,
                customer_count=chunk.customer_count,
                started_at=timezone.now(),
                duration_s=0.25,
                status_code=fields.get("status_code", 201),
                outcome=fields.get("outcome", ChunkAttempt.Outcome.ACCEPTED),
                error_class=fields.get("error_class", ""),
                response_excerpt=fields.get("response_excerpt", f"answer-for-{chunk.sequence}"),
                ratelimit=fields.get("ratelimit", {"limit": 250, "remaining": 200, "reset": 3600}),
                retry_after_s=fields.get("retry_after_s"),
            )
            for chunk in chunks
        ]
    )


def fail_customers(job: MigrationJob, chunk: JobChunk, rows: list[tuple[str, str, str]]) -> None:
    """Staged customers of the job's batch that ``chunk`` failed: (legacy id, email, error)."""
    StagedCustomer.objects.bulk_create(
        [
            StagedCustomer(
                batch=job.batch,
                legacy_id=legacy_id,
                email=email,
                is_valid=True,
                outcome=Outcome.FAILED,
                outcome_at=timezone.now(),
                outcome_error=error,
                outcome_job_id=job.pk,
                outcome_chunk_id=chunk.pk,
            )
            for legacy_id, email, error in rows
        ]
    )


def change_url(job: MigrationJob) -> str:
    return reverse("admin:migrations_jobs_migrationjob_change", args=[job.pk])


def action_url(job: MigrationJob, action: str) -> str:
    return reverse("admin:migrations_jobs_migrationjob_action", args=[job.pk, action])


def progress_url(job: MigrationJob) -> str:
    return reverse("admin:migrations_jobs_migrationjob_progress", args=[job.pk])


def csv_url(job: MigrationJob) -> str:
    return reverse("admin:migrations_jobs_migrationjob_failed_csv", args=[job.pk])


CHANGELIST = reverse("admin:migrations_jobs_migrationjob_changelist")


def last_message(response) -> str:
    return [str(m) for m in response.context["messages"]][-1]


# --- history ---------------------------------------------------------------------------------


def test_history_shows_each_job_with_its_progress_and_failed_count(client, operator):
    job = make_job(
        started_by=operator,
        status=JobStatus.PARTIALLY_FAILED,
        chunks=[("sent", 1000), ("sent", 1000), ("failed", 340)],
        sent=2000,
        failed=340,
        finished_ago=dt.timedelta(0),
    )
    client.force_login(operator)

    page = client.get(CHANGELIST).content.decode()

    assert "2,000 / 2,340" in page
    assert 'class="console-badge console-badge-partially_failed">Partially failed<' in page
    assert '<span class="console-failed">340</span>' in page
    assert 'aria-valuenow="2340"' in page
    assert job.batch.name in page
    assert "operator" in page
    assert '<td class="field-duration_display">2 min</td>' in page


def test_history_shows_time_left_of_running_jobs_from_the_pace(client, operator, paced):
    running = make_job(
        started_by=operator, chunks=[("pending", 1000)] * 3, started_ago=dt.timedelta(0)
    )
    make_job(
        started_by=operator,
        status=JobStatus.SUCCEEDED,
        chunks=[("sent", 10)],
        sent=10,
        finished_ago=dt.timedelta(0),
    )
    client.force_login(operator)

    page = client.get(CHANGELIST).content.decode()

    # Three requests left at one every 5 seconds; the ended job has none left.
    assert page.count('<div class="console-eta">') == 1
    assert '<div class="console-eta">about 15 s left</div>' in page
    assert job_eta_s(job=running, open_chunks=3) == 15


def test_time_left_without_a_pace_follows_the_job_rate(operator, settings):
    settings.MIGRATION_MIN_INTERVAL_S = 0
    settings.MIGRATION_HOURLY_CAP = 0
    now = timezone.now()
    job = make_job(
        started_by=operator,
        chunks=[("sent", 100), ("pending", 100)],
        sent=100,
        started_ago=dt.timedelta(minutes=10),
    )

    # 100 customers took 10 minutes: the 100 left should take as long.
    assert job_eta_s(job=job, open_chunks=1, now=now) == pytest.approx(600, abs=1)
    assert job_eta_s(job=job, open_chunks=0, now=now) == 0
    fresh = make_job(started_by=operator, chunks=[("pending", 100)], started_ago=dt.timedelta(0))
    assert job_eta_s(job=fresh, open_chunks=1, now=now) is None


def test_pace_counts_the_hourly_cap():
    assert pace_duration_s(requests=3, interval_s=5, hourly_cap=250) == 15
    # 250 requests in the first hour, 50 more after it.
    assert pace_duration_s(requests=300, interval_s=5, hourly_cap=250) == 3600 + 50 * 5
    assert pace_duration_s(requests=300, interval_s=20, hourly_cap=250) == 300 * 20
    assert pace_duration_s(requests=300, interval_s=0, hourly_cap=0) is None


def test_history_reads_the_same_number_of_queries_for_many_jobs(client, operator):
    def queries_for_history() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(CHANGELIST).status_code == 200
        return len(captured)

    client.force_login(operator)
    make_job(started_by=operator, chunks=[("pending", 5)])
    few = queries_for_history()
    for _ in range(8):
        make_job(started_by=operator, chunks=[("sent", 5), ("pending", 5)], sent=5)

    assert queries_for_history() == few


def test_history_filters_by_status_and_batch(client, operator):
    failed = make_job(
        started_by=operator, status=JobStatus.FAILED, chunks=[("failed", 3)], failed=3
    )
    other = make_job(started_by=operator, chunks=[("pending", 4)])
    client.force_login(operator)

    by_status = client.get(CHANGELIST, {"status__exact": "failed"})
    by_batch = client.get(CHANGELIST, {"batch__id__exact": other.batch_id})

    assert list(by_status.context["cl"].result_list) == [failed]
    assert list(by_batch.context["cl"].result_list) == [other]


def test_history_is_read_only(client, operator):
    job = make_job(started_by=operator, chunks=[("pending", 4)])
    client.force_login(operator)

    assert client.get(reverse("admin:migrations_jobs_migrationjob_add")).status_code == 403
    assert (
        client.get(reverse("admin:migrations_jobs_migrationjob_delete", args=[job.pk])).status_code
        == 403
    )
    assert b'name="_save"' not in client.get(change_url(job)).content


def test_history_needs_the_view_permission(client):
    client.force_login(UserFactory(username="nobody"))

    assert client.get(CHANGELIST).status_code == 403


# --- the job page ----------------------------------------------------------------------------


@pytest.fixture
def big_job(operator):
    """1,000 chunks: most sent, some failed, the last ones pending; attempts for 60."""
    chunks = [("sent", 1000)] * 900 + [("failed", 1000)] * 20 + [("pending", 1000)] * 80
    job = make_job(started_by=operator, chunks=chunks, sent=900_000, failed=20_000)
    add_attempts(job, sequences=range(1, 61))
    add_attempts(
        job,
        sequences=range(901, 921),
        status_code=422,
        outcome=ChunkAttempt.Outcome.PERMANENT,
        error_class="PermanentError",
        response_excerpt='{"error": "Invalid customer entry"}',
    )
    first_failed = JobChunk.objects.get(job=job, sequence=901)
    fail_customers(
        job,
        first_failed,
        [
            (f"legacy-{n:05d}", f"c{n}@example.com", "422: Invalid customer entry")
            for n in range(60)
        ],
    )
    return job


def test_job_page_of_a_job_with_1000_chunks_reads_at_most_15_queries(
    client, operator, big_job, django_assert_max_num_queries
):
    client.force_login(operator)
    client.get(CHANGELIST)  # the session and permissions are warm, as on a real visit

    started = time.perf_counter()
    with django_assert_max_num_queries(15):
        response = client.get(change_url(big_job))
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    page = response.content.decode()
    assert "Chunks 1 to 50 of 1,000." in page
    assert page.count('class="console-chunk"') == 50
    # Attempts of the chunks shown, and of no other chunk.
    assert "answer-for-1<" in page
    assert "answer-for-50<" in page
    assert "answer-for-51<" not in page
    assert "limit 250" in page
    assert elapsed < 5  # a loose guard; the measured time is far below (see the report)


def test_job_page_summarises_progress_and_chunk_counts(client, operator, big_job):
    client.force_login(operator)

    page = client.get(change_url(big_job)).content.decode()

    assert 'data-job="sent">900,000<' in page
    assert 'data-job="failed">20,000<' in page
    assert 'data-job="not_sent">80,000<' in page
    assert 'data-job="percent">92%<' in page
    assert 'data-job="chunks-sent">900<' in page
    assert 'data-job="chunks-pending">80<' in page
    assert "Sent (900)" in page
    assert "Failed (20)" in page
    assert "console_jobs/job_progress.js" in page  # the page updates itself while it runs


def test_job_page_filters_and_pages_chunks(client, operator, big_job):
    client.force_login(operator)

    failed = client.get(change_url(big_job), {"chunks": "failed"}).content.decode()
    second = client.get(change_url(big_job), {"chunks_page": "2"}).content.decode()

    assert failed.count('class="console-chunk"') == 20
    assert 'id="chunk-901"' in failed
    assert "Invalid customer entry" in failed
    assert "PermanentError" in failed
    assert 'id="chunk-1"' not in failed
    assert 'id="chunk-51"' in second
    assert 'id="chunk-100"' in second
    assert 'id="chunk-50"' not in second
    assert "Chunks 51 to 100 of 1,000." in second


def test_job_page_lists_the_first_failed_customers_and_links_the_csv(client, operator, big_job):
    client.force_login(operator)

    page = client.get(change_url(big_job)).content.decode()

    assert "legacy-00000" in page
    assert "legacy-00049" in page
    assert "legacy-00050" not in page  # capped; the CSV has them all
    assert "The first 50 of 20,000 are shown." in page
    assert csv_url(big_job) in page


def test_job_page_hides_customers_from_who_may_not_see_them(client, viewer, big_job):
    client.force_login(viewer)

    page = client.get(change_url(big_job)).content.decode()

    assert "legacy-00000" not in page
    assert csv_url(big_job) not in page
    assert client.get(csv_url(big_job)).status_code == 403


# --- live progress ---------------------------------------------------------------------------


def test_progress_view_answers_the_counts_the_page_shows(client, operator, paced):
    job = make_job(
        started_by=operator,
        chunks=[("sent", 1000), ("failed", 340), ("sending", 1000), ("pending", 1000)],
        sent=1000,
        failed=340,
        started_ago=dt.timedelta(seconds=20),
    )
    client.force_login(operator)

    data = client.get(progress_url(job)).json()

    assert data["status"] == "running"
    assert data["status_label"] == "Running"
    assert data["is_active"] is True
    assert (data["total"], data["sent"], data["failed"], data["not_sent"]) == (
        3340,
        1000,
        340,
        2000,
    )
    assert data["percent"] == 40
    assert data["chunks"]["pending"] == 1
    assert data["chunks"]["sending"] == 1
    assert data["open_chunks"] == 2
    assert data["text"]["total"] == "3,340"
    assert data["bar"] == {"sent": "29.94%", "failed": "10.18%", "skipped": "0.00%"}
    assert data["eta"].startswith("about ")
    assert data["eta_s"] > 0
    assert data["duration"] == "20 seconds"


def test_progress_view_of_an_ended_job_says_it_is_no_longer_active(client, operator):
    job = make_job(
        started_by=operator,
        status=JobStatus.SUCCEEDED,
        chunks=[("sent", 5)],
        sent=5,
        finished_ago=dt.timedelta(0),
    )
    client.force_login(operator)

    data = client.get(progress_url(job)).json()

    assert data["is_active"] is False
    assert data["eta"] == ""
    assert data["finished_at"] is not None


def test_progress_view_needs_the_view_permission(client, operator):
    job = make_job(started_by=operator, chunks=[("pending", 5)])

    assert client.get(progress_url(job)).status_code == 302  # to the login page
    client.force_login(UserFactory(username="nobody"))
    assert client.get(progress_url(job)).status_code == 403
    client.force_login(operator)
    assert (
        client.get(reverse("admin:migrations_jobs_migrationjob_progress", args=[0])).status_code
        == 404
    )


# --- actions ---------------------------------------------------------------------------------


def offered_actions(client, job) -> set[str]:
    page = client.get(change_url(job)).content.decode()
    return {name for name in ("cancel", "retry-failed", "resume") if action_url(job, name) in page}


def test_actions_are_offered_by_state_and_permission(client, operator, viewer):
    running = make_job(started_by=operator, chunks=[("sent", 5), ("pending", 5)], sent=5)
    partly = make_job(
        started_by=operator,
        status=JobStatus.PARTIALLY_FAILED,
        chunks=[("sent", 5), ("failed", 5)],
        sent=5,
        failed=5,
        finished_ago=dt.timedelta(0),
    )
    done = make_job(
        started_by=operator,
        status=JobStatus.SUCCEEDED,
        chunks=[("sent", 5)],
        sent=5,
        finished_ago=dt.timedelta(0),
    )
    client.force_login(operator)
    assert offered_actions(client, running) == {"cancel", "resume"}
    assert offered_actions(client, partly) == {"retry-failed"}
    assert offered_actions(client, done) == set()

    client.force_login(viewer)
    assert offered_actions(client, running) == set()
    assert offered_actions(client, partly) == set()


def test_cancel_asks_for_confirmation_then_cancels_by_post(client, operator):
    job = make_job(
        started_by=operator, chunks=[("sent", 1000), ("sending", 1000), ("pending", 340)], sent=1000
    )
    client.force_login(operator)

    page = client.get(action_url(job, "cancel"))

    text = page.content.decode()
    assert (
        "No new request starts. 1 pending chunk is cancelled. 1 request already on its way "
        "finishes and is recorded." in text
    )
    assert "So far 1,000 of 2,340 customers are sent; 1,340 are not sent yet." in text
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING  # a GET changes nothing

    response = client.post(action_url(job, "cancel"), follow=True)

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.cancelled_by == operator
    assert last_message(response) == f"Job #{job.pk} is cancelled: no new request starts."
    assert response.redirect_chain[-1][0] == change_url(job)


def test_cancel_is_refused_without_permission(client, operator):
    job = make_job(started_by=operator, chunks=[("pending", 5)])
    client.force_login(
        UserFactory(username="looker", perms=[VIEW_JOB, "migrations_jobs.retry_migrationjob"])
    )

    assert client.get(action_url(job, "cancel")).status_code == 403
    assert client.post(action_url(job, "cancel")).status_code == 403
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING


def test_cancel_of_an_ended_job_is_refused(client, operator):
    job = make_job(
        started_by=operator,
        status=JobStatus.SUCCEEDED,
        chunks=[("sent", 5)],
        sent=5,
        finished_ago=dt.timedelta(0),
    )
    client.force_login(operator)

    asked = client.get(action_url(job, "cancel"), follow=True)
    posted = client.post(action_url(job, "cancel"), follow=True)

    assert (
        last_message(asked)
        == f"“Cancel job” is not possible for job #{job.pk} now: it is succeeded."
    )
    assert last_message(posted) == f"Job #{job.pk} is succeeded and cannot become cancelled."
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED


def test_retry_failed_asks_then_sends_the_failed_chunks_again(client, operator, paced):
    job = make_job(
        started_by=operator,
        status=JobStatus.PARTIALLY_FAILED,
        chunks=[("sent", 1000), ("failed", 1000), ("failed", 340)],
        sent=1000,
        failed=1340,
        finished_ago=dt.timedelta(0),
    )
    client.force_login(operator)

    text = client.get(action_url(job, "retry-failed")).content.decode()
    assert "2 failed chunks with 1,340 customers are sent again, each as a new chunk." in text
    assert "At the configured pace that takes about 10 seconds." in text
    assert "The job becomes running again" in text

    response = client.post(action_url(job, "retry-failed"), follow=True)

    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert job.chunk_count == 5
    assert list(job.chunks.filter(sequence__gt=3).values_list("status", "parent__sequence")) == [
        ("pending", 2),
        ("pending", 3),
    ]
    assert (
        last_message(response) == f"The failed chunks of job #{job.pk} are queued to be sent again."
    )


def test_retry_failed_is_refused_without_permission_or_failed_chunks(client, operator):
    job = make_job(
        started_by=operator,
        status=JobStatus.PARTIALLY_FAILED,
        chunks=[("sent", 5), ("failed", 5)],
        sent=5,
        failed=5,
        finished_ago=dt.timedelta(0),
    )
    nothing_failed = make_job(started_by=operator, chunks=[("pending", 5)])
    client.force_login(
        UserFactory(username="canceller", perms=[VIEW_JOB, "migrations_jobs.cancel_migrationjob"])
    )
    assert client.post(action_url(job, "retry-failed")).status_code == 403

    client.force_login(operator)
    asked = client.get(action_url(nothing_failed, "retry-failed"), follow=True)
    posted = client.post(action_url(nothing_failed, "retry-failed"), follow=True)

    assert "is not possible" in last_message(asked)
    assert last_message(posted) == f"Job #{nothing_failed.pk} has no failed chunk to retry."
    assert job.chunks.count() == 2
    assert nothing_failed.chunks.count() == 1


def test_resume_asks_then_takes_back_dead_leases(client, operator):
    job = make_job(started_by=operator, chunks=[("sent", 5), ("sending", 5)], sent=5)
    JobChunk.objects.filter(job=job, status="sending").update(
        lease_owner="dead-worker", lease_expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    MigrationJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - dt.timedelta(hours=1)
    )
    client.force_login(operator)

    text = client.get(action_url(job, "resume")).content.decode()
    assert "No worker has worked on this job for 1 hour: it looks stalled." in text

    response = client.post(action_url(job, "resume"), follow=True)

    assert last_message(response) == f"Job #{job.pk} is resumed: a worker picks it up."
    assert job.chunks.get(sequence=2).status == ChunkStatus.PENDING


def test_resume_of_a_cancelled_job_is_refused(client, operator):
    job = make_job(
        started_by=operator,
        status=JobStatus.CANCELLED,
        chunks=[("cancelled", 5)],
        finished_ago=dt.timedelta(0),
    )
    client.force_login(operator)

    posted = client.post(action_url(job, "resume"), follow=True)

    assert (
        last_message(posted)
        == f"Job #{job.pk} is cancelled: only a queued or running job can resume."
    )
    assert client.post(action_url(job, "explode")).status_code == 404


# --- failed customers as CSV ----------------------------------------------------------------


def test_failed_customers_csv_escapes_formulas(client, operator):
    job = make_job(
        started_by=operator,
        status=JobStatus.PARTIALLY_FAILED,
        chunks=[("sent", 5), ("failed", 6)],
        sent=5,
        failed=6,
        finished_ago=dt.timedelta(0),
    )
    chunk = JobChunk.objects.get(job=job, sequence=2)
    fail_customers(
        job,
        chunk,
        [
            ("=HYPERLINK(1)", "a@example.com", "plain error"),
            ("+1", "+b@example.com", "-oops"),
            ("@SUM(A1)", "c@example.com", "\tTAB"),
            ("ok-1", "d@example.com", "\rCR"),
            ("-2", "e@example.com", "=1+1"),
            ("000123", "f@example.com", "422: Invalid customer entry"),
        ],
    )
    client.force_login(operator)

    response = client.get(csv_url(job))

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="job-{job.pk}-failed.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == JOB_CUSTOMER_COLUMNS
    body = [[row[0], row[2], row[3], row[5], row[8]] for row in rows[1:]]
    assert body == [
        ["'=HYPERLINK(1)", "a@example.com", "failed", "2", "plain error"],
        ["'+1", "'+b@example.com", "failed", "2", "'-oops"],
        ["'@SUM(A1)", "c@example.com", "failed", "2", "'\tTAB"],
        ["ok-1", "d@example.com", "failed", "2", "'\rCR"],
        ["-2", "e@example.com", "failed", "2", "'=1+1"],  # a plain number runs nothing
        ["000123", "f@example.com", "failed", "2", "422: Invalid customer entry"],
    ]
    assert all(row[4] for row in rows[1:])


def test_failed_customers_csv_needs_job_and_customer_permissions(client, operator):
    job = make_job(
        started_by=operator,
        status=JobStatus.FAILED,
        chunks=[("failed", 1)],
        failed=1,
        finished_ago=dt.timedelta(0),
    )
    client.force_login(
        UserFactory(username="customers-only", perms=["customers.view_stagedcustomer"])
    )

    assert client.get(csv_url(job)).status_code == 403
