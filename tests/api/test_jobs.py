import csv
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from console.exports import spreadsheet_safe
from customers.models import Outcome, StagedCustomer, StagingBatch
from customers.services import batch_approve
from migrations_jobs.api.views.jobs import ERR_JOB_NOT_FOUND
from migrations_jobs.exports import JOB_CUSTOMER_COLUMNS
from migrations_jobs.models import JobChunk, MigrationJob
from migrations_jobs.services.base import ERR_NOTHING_TO_RETRY
from tests.factories import BatchFactory, CustomerFactory, UserFactory
from tests.worker import mark_validated

pytestmark = pytest.mark.django_db
Status = MigrationJob.Status


def url(name, *args):
    return reverse(f"api:{name}", args=args)


def assert_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == error
    assert body["details"]
    return body


@pytest.fixture
def operator(db):
    """Submits, follows and acts on jobs."""
    return UserFactory(
        username="operator",
        perms=[
            "customers.submit_stagingbatch",
            "customers.view_stagingbatch",
            "customers.view_stagedcustomer",
            "migrations_jobs.view_migrationjob",
            "migrations_jobs.cancel_migrationjob",
            "migrations_jobs.retry_migrationjob",
        ],
    )


@pytest.fixture
def approved(importer, approver) -> StagingBatch:
    batch = BatchFactory(name="approved", created_by=importer)
    for number in range(3):
        CustomerFactory(batch=batch, legacy_id=f"c-{number}", is_valid=True)
    mark_validated(batch)
    return batch_approve(batch=batch, user=approver)


@pytest.fixture
def job(as_user, operator, approved) -> MigrationJob:
    response = as_user(operator).post(url("batch-submit", approved.pk))
    assert response.status_code == 201, response.content
    return MigrationJob.objects.get(pk=response.json()["id"])


def job_fail(job: MigrationJob, *, legacy_ids: list[str], error: str) -> None:
    """Record what a worker records when Masivo refuses ``legacy_ids``: the job's chunk is
    split into a sent chunk and a failed one holding exactly those customers."""
    now = timezone.now()
    chunk = job.chunks.get()
    customers = StagedCustomer.objects.filter(pk__in=chunk.customer_ids)
    failed_ids = list(customers.filter(legacy_id__in=legacy_ids).values_list("pk", flat=True))
    sent_ids = [pk for pk in chunk.customer_ids if pk not in failed_ids]
    JobChunk.objects.filter(pk=chunk.pk).update(status=JobChunk.Status.SPLIT)
    parts = ((sent_ids, JobChunk.Status.SENT, ""), (failed_ids, JobChunk.Status.FAILED, error))
    children = {
        status: JobChunk.objects.create(
            job=job,
            sequence=number,
            parent=chunk,
            customer_ids=ids,
            customer_count=len(ids),
            status=status,
            last_error=last_error,
            not_before=now,
        )
        for number, (ids, status, last_error) in enumerate(parts, start=2)
    }
    for ids, outcome, status in (
        (sent_ids, Outcome.SENT, "sent"),
        (failed_ids, Outcome.FAILED, "failed"),
    ):
        customers.filter(pk__in=ids).update(
            outcome=outcome,
            outcome_at=now,
            outcome_error=error if outcome == Outcome.FAILED else "",
            outcome_job_id=job.pk,
            outcome_chunk_id=children[status].pk,
        )
    MigrationJob.objects.filter(pk=job.pk).update(
        status=Status.PARTIALLY_FAILED if sent_ids else Status.FAILED,
        chunk_count=3,
        sent_customers=len(sent_ids),
        failed_customers=len(failed_ids),
        finished_at=now,
    )


# --- submit ----------------------------------------------------------------------------------
def test_submit_answers_201_with_the_queued_job(as_user, operator, approved):
    response = as_user(operator).post(url("batch-submit", approved.pk))

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["batch"], body["batch_name"]) == (
        "queued",
        approved.pk,
        "approved",
    )
    assert (body["total_customers"], body["chunk_count"], body["started_by"]) == (3, 1, "operator")
    assert body["progress"]["chunks"]["pending"] == 1
    approved.refresh_from_db()
    assert approved.status == StagingBatch.Status.SUBMITTED


def test_submit_needs_the_submit_permission(as_user, importer, approved):
    assert_error(as_user(importer).post(url("batch-submit", approved.pk)), 403, "permission_denied")
    assert not MigrationJob.objects.exists()


def test_submitting_a_batch_that_is_not_approved_is_a_conflict(as_user, operator, importer):
    draft = BatchFactory(created_by=importer)
    body = assert_error(as_user(operator).post(url("batch-submit", draft.pk)), 409, "conflict")
    assert "only an approved batch can be submitted" in body["details"]


def test_submitting_twice_is_a_conflict(as_user, operator, job):
    assert_error(as_user(operator).post(url("batch-submit", job.batch_id)), 409, "conflict")
    assert MigrationJob.objects.count() == 1


def test_submitting_an_unknown_batch_is_404(as_user, operator):
    assert_error(as_user(operator).post(url("batch-submit", 999)), 404, "not_found")


# --- list and status ---------------------------------------------------------------------------
def test_jobs_are_listed_and_filtered(as_user, operator, job):
    client = as_user(operator)
    listed = client.get(url("job-list"), {"batch": job.batch_id}).json()
    assert [j["id"] for j in listed["results"]] == [job.pk]
    assert listed["results"][0]["progress"] is None  # a query per job: only on its own page
    assert client.get(url("job-list"), {"status": "succeeded"}).json()["count"] == 0


def test_jobs_list_needs_the_view_permission(as_user, importer, job):
    assert_error(as_user(importer).get(url("job-list")), 403, "permission_denied")


def test_status_shows_progress_and_counts(as_user, operator, job):
    job_fail(job, legacy_ids=["c-1"], error="422 Invalid customer entry")

    body = as_user(operator).get(url("job-detail", job.pk)).json()

    assert body["status"] == "partially_failed"
    assert (body["sent_customers"], body["failed_customers"]) == (2, 1)
    assert body["progress"]["percent"] == 100
    assert (body["progress"]["sent"], body["progress"]["failed"]) == (2, 1)
    assert body["progress"]["chunks"] == {
        "waiting": 0,
        "pending": 0,
        "sending": 0,
        "sent": 1,
        "failed": 1,
        "split": 1,
        "skipped": 0,
        "held": 0,
        "cancelled": 0,
    }
    assert body["progress"]["phases"] == [
        {
            "endpoint": "customers",
            "state": "done",
            "chunks": 3,
            "total": 3,
            "sent": 2,
            "failed": 1,
            "skipped": 0,
        }
    ]
    assert (body["total_transactions"], body["sent_events"]) == (0, 0)


def test_status_of_an_unknown_job_is_404(as_user, operator):
    body = assert_error(as_user(operator).get(url("job-detail", 999)), 404, "not_found")
    assert body["details"] == ERR_JOB_NOT_FOUND % {"id": 999}


def test_status_needs_the_view_permission(as_user, nobody, job):
    assert_error(as_user(nobody).get(url("job-detail", job.pk)), 403, "permission_denied")


# --- cancel, retry failed, resume ----------------------------------------------------------
def test_cancel_stops_a_queued_job(as_user, operator, job):
    response = as_user(operator).post(url("job-cancel", job.pk))

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancelled_by"]) == ("cancelled", "operator")
    assert response.json()["progress"]["chunks"]["cancelled"] == 1


def test_cancel_needs_the_cancel_permission(as_user, approver, operator, job):
    approver.user_permissions.add(
        *operator.user_permissions.exclude(codename="cancel_migrationjob")
    )
    approver = type(approver).objects.get(pk=approver.pk)
    response = as_user(approver).post(url("job-cancel", job.pk))
    assert assert_error(response, 403, "permission_denied")["details"] == (
        "You need the permission “migrations_jobs.cancel_migrationjob” to do this."
    )


def test_cancelling_an_ended_job_is_a_conflict(as_user, operator, job):
    MigrationJob.objects.filter(pk=job.pk).update(status=Status.SUCCEEDED)
    body = assert_error(as_user(operator).post(url("job-cancel", job.pk)), 409, "conflict")
    assert body["details"] == f"Job #{job.pk} is succeeded and cannot become cancelled."


def test_cancelling_an_unknown_job_is_404(as_user, operator):
    assert_error(as_user(operator).post(url("job-cancel", 999)), 404, "not_found")


def test_retry_failed_runs_the_failed_chunk_again(as_user, operator, job):
    job_fail(job, legacy_ids=["c-1"], error="boom")

    response = as_user(operator).post(url("job-retry-failed", job.pk))

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["failed_customers"], body["chunk_count"]) == ("running", 0, 4)
    assert body["progress"]["chunks"]["pending"] == 1
    assert StagedCustomer.objects.get(legacy_id="c-1").outcome == Outcome.NOT_SENT


def test_retry_without_failed_chunks_is_a_conflict(as_user, operator, job):
    MigrationJob.objects.filter(pk=job.pk).update(status=Status.FAILED)
    body = assert_error(as_user(operator).post(url("job-retry-failed", job.pk)), 409, "conflict")
    assert body["details"] == ERR_NOTHING_TO_RETRY % {"job": job.pk}


def test_retry_needs_the_retry_permission(as_user, approver, job):
    assert_error(as_user(approver).post(url("job-retry-failed", job.pk)), 403, "permission_denied")


def test_resume_enqueues_an_active_job_again(
    as_user, operator, job, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = as_user(operator).post(url("job-resume", job.pk))
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert len(callbacks) == 1  # the job's run, enqueued once the resume commits


def test_resuming_an_ended_job_is_a_conflict(as_user, operator, job):
    MigrationJob.objects.filter(pk=job.pk).update(status=Status.CANCELLED)
    body = assert_error(as_user(operator).post(url("job-resume", job.pk)), 409, "conflict")
    assert "only a queued or running job can resume" in body["details"]


def test_resume_needs_the_retry_permission(as_user, approver, job):
    assert_error(as_user(approver).post(url("job-resume", job.pk)), 403, "permission_denied")


# --- failed customers --------------------------------------------------------------------------
def test_failed_customers_are_listed_paginated(as_user, operator, job):
    job_fail(job, legacy_ids=["c-0", "c-2"], error="422 Invalid customer entry")
    client = as_user(operator)

    body = client.get(url("job-failed-customers", job.pk), {"page_size": 1}).json()

    assert body["count"] == 2
    [first] = body["results"]
    assert (first["legacy_id"], first["error"]) == ("c-0", "422 Invalid customer entry")
    assert first["chunk"] == job.chunks.get(status=JobChunk.Status.FAILED).pk
    assert body["next"] is not None


def test_failed_customers_need_the_view_permissions(as_user, importer, job):
    assert_error(
        as_user(importer).get(url("job-failed-customers", job.pk)), 403, "permission_denied"
    )


def test_failed_customers_of_an_unknown_job_are_404(as_user, operator):
    assert_error(as_user(operator).get(url("job-failed-customers", 999)), 404, "not_found")


def test_failed_customers_csv_escapes_what_a_spreadsheet_would_run(as_user, operator, job):
    names = {"c-0": '=HYPERLINK("http://x")', "c-1": "+1", "c-2": "@sum"}
    for legacy_id, name in names.items():
        StagedCustomer.objects.filter(legacy_id=legacy_id).update(name=name)
    job_fail(job, legacy_ids=list(names), error="-refused\tby Masivo")

    response = as_user(operator).get(url("job-failed-customers-csv", job.pk))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f"job-{job.pk}-failed.csv" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    header, *rows = csv.reader(io.StringIO(text))
    assert header == JOB_CUSTOMER_COLUMNS
    assert [(r[0], r[1], r[8]) for r in rows] == [
        ("c-0", '\'=HYPERLINK("http://x")', "'-refused\tby Masivo"),
        ("c-1", "'+1", "'-refused\tby Masivo"),
        ("c-2", "'@sum", "'-refused\tby Masivo"),
    ]


def test_failed_customers_csv_escapes_tab_and_carriage_return_prefixes():
    assert [spreadsheet_safe(v) for v in ("\tx", "\rx", "x=1", "", None, 7)] == [
        "'\tx",
        "'\rx",
        "x=1",
        "",
        "",
        "7",
    ]


def test_failed_customers_csv_answers_a_client_that_asks_for_csv(as_user, operator, job):
    response = as_user(operator).get(
        url("job-failed-customers-csv", job.pk), HTTP_ACCEPT="text/csv"
    )
    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode().splitlines() == [
        ",".join(JOB_CUSTOMER_COLUMNS)
    ]


def test_failed_customers_csv_needs_the_view_permissions(as_user, importer, job):
    response = as_user(importer).get(url("job-failed-customers-csv", job.pk))
    assert_error(response, 403, "permission_denied")


def test_failed_customers_csv_of_an_unknown_job_is_404(as_user, operator):
    assert_error(as_user(operator).get(url("job-failed-customers-csv", 999)), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "job-detail"),
        ("post", "job-cancel"),
        ("post", "job-retry-failed"),
        ("post", "job-resume"),
        ("get", "job-failed-customers"),
        ("get", "job-failed-customers-csv"),
    ],
)
def test_every_job_endpoint_answers_404_for_an_unknown_job(as_user, admin_user, method, name):
    response = getattr(as_user(admin_user), method)(url(name, 999))
    assert assert_error(response, 404, "not_found")["details"] == ERR_JOB_NOT_FOUND % {"id": 999}


def test_admin_and_api_give_the_same_failed_customers_file(as_user, client, operator, job):
    job_fail(job, legacy_ids=["c-0", "c-2"], error='=422 {"error": "Invalid customer entry"}')
    client.force_login(operator)

    from_admin = client.get(reverse("admin:migrations_jobs_migrationjob_failed_csv", args=[job.pk]))
    from_api = as_user(operator).get(url("job-failed-customers-csv", job.pk))

    assert (from_admin.status_code, from_api.status_code) == (200, 200)
    admin_bytes = b"".join(from_admin.streaming_content)
    assert admin_bytes == b"".join(from_api.streaming_content)
    rows = list(csv.reader(io.StringIO(admin_bytes.decode())))
    assert [row[0] for row in rows[1:]] == ["c-0", "c-2"]
    assert rows[1][JOB_CUSTOMER_COLUMNS.index("detail")].startswith("'=422")
