"""When a job ends, its outcome is emailed to whoever started it and to
MIGRATION_NOTIFY_EMAILS, once per ending, with a link to the job's page."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.core.mail import EmailMessage
from django.utils import timezone

from customers.models import StagingBatch
from migrations_jobs.models import JobChunk, MigrationJob
from migrations_jobs.notifications import notify_job_finished
from migrations_jobs.services import (
    job_cancel,
    job_finish_if_done,
    job_retry_failed,
    job_transition,
)
from tests.factories import BatchFactory, UserFactory

pytestmark = pytest.mark.django_db
JobStatus = MigrationJob.Status
ChunkStatus = JobChunk.Status


@pytest.fixture
def notify(settings):
    settings.CONSOLE_BASE_URL = "https://console.example.com/"
    settings.MIGRATION_NOTIFY_EMAILS = ["ops@example.com", "Luis@Example.com"]
    return settings


@pytest.fixture
def operator(db):
    return UserFactory(
        username="luis",
        email="luis@example.com",
        perms=["migrations_jobs.cancel_migrationjob", "migrations_jobs.retry_migrationjob"],
    )


def running_job(*, user, chunks: list[tuple[str, int]], sent: int = 0, failed: int = 0):
    """A running job whose chunks are in the given (status, customers)."""
    batch = BatchFactory(
        name="spring-migration", created_by=user, status=StagingBatch.Status.SUBMITTED
    )
    job = MigrationJob.objects.create(
        batch=batch,
        started_by=user,
        status=JobStatus.RUNNING,
        total_customers=sum(n for _status, n in chunks),
        sent_customers=sent,
        failed_customers=failed,
        chunk_count=len(chunks),
        request_count=len(chunks),
        started_at=timezone.now() - dt.timedelta(seconds=15),
    )
    JobChunk.objects.bulk_create(
        [
            JobChunk(
                job=job,
                sequence=number,
                status=status,
                customer_count=n,
                not_before=timezone.now(),
            )
            for number, (status, n) in enumerate(chunks, start=1)
        ]
    )
    return job


def test_an_ended_job_is_emailed_once_with_its_outcome_and_link(
    operator, notify, mailoutbox, django_capture_on_commit_callbacks
):
    job = running_job(user=operator, chunks=[("sent", 1000), ("sent", 1340)], sent=2340)

    with django_capture_on_commit_callbacks(execute=True):
        job_finish_if_done(job_id=job.pk)
    with django_capture_on_commit_callbacks(execute=True):
        job_finish_if_done(job_id=job.pk)  # a second worker sees the same end
    assert notify_job_finished(job_id=job.pk) is False

    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    # The starter first, then the list; each address once, whatever its case.
    assert email.to == ["luis@example.com", "ops@example.com"]
    assert email.subject == (
        f"[Masivo console] Job #{job.pk} succeeded: 2,340 of 2,340 customers sent"
    )
    assert f"Job #{job.pk} for batch “spring-migration” succeeded." in email.body
    assert "Sent: 2,340" in email.body
    assert "Failed: 0" in email.body
    assert (
        f"https://console.example.com/admin/migrations_jobs/migrationjob/{job.pk}/change/"
        in email.body
    )
    assert "failed-customers.csv" not in email.body
    job.refresh_from_db()
    assert job.notified_at is not None


@pytest.mark.parametrize(
    ("chunks", "sent", "failed", "outcome"),
    [
        ([("sent", 700), ("failed", 300)], 700, 300, "partially failed"),
        ([("failed", 1000)], 0, 1000, "failed"),
    ],
)
def test_a_job_with_failures_says_how_many_and_links_the_csv(
    operator, notify, mailoutbox, django_capture_on_commit_callbacks, chunks, sent, failed, outcome
):
    job = running_job(user=operator, chunks=chunks, sent=sent, failed=failed)

    with django_capture_on_commit_callbacks(execute=True):
        job_finish_if_done(job_id=job.pk)

    (email,) = mailoutbox
    assert email.subject == (
        f"[Masivo console] Job #{job.pk} {outcome}: {sent:,} sent, {failed:,} failed of "
        "1,000 customers"
    )
    assert f"for batch “spring-migration” {outcome}." in email.body
    assert (
        f"https://console.example.com/admin/migrations_jobs/migrationjob/{job.pk}/"
        "failed-customers.csv" in email.body
    )


def test_a_cancelled_job_is_emailed(
    operator, notify, mailoutbox, django_capture_on_commit_callbacks
):
    job = running_job(user=operator, chunks=[("sent", 1000), ("pending", 1000)], sent=1000)

    with django_capture_on_commit_callbacks(execute=True):
        job_cancel(job=job, user=operator)

    (email,) = mailoutbox
    assert email.subject == (
        f"[Masivo console] Job #{job.pk} was cancelled: 1,000 of 2,000 customers sent"
    )
    assert "Not sent: 1,000" in email.body
    assert "Cancelled by: luis" in email.body


def test_a_job_that_ends_again_after_a_retry_is_emailed_again(
    operator, notify, mailoutbox, django_capture_on_commit_callbacks
):
    job = running_job(user=operator, chunks=[("sent", 5), ("failed", 5)], sent=5, failed=5)
    with django_capture_on_commit_callbacks(execute=True):
        job_finish_if_done(job_id=job.pk)
    with django_capture_on_commit_callbacks(execute=True):
        job_retry_failed(job=job, user=operator)
    assert len(mailoutbox) == 1  # running again: nothing to say yet

    retried = job.chunks.get(sequence=3)
    JobChunk.objects.filter(pk=retried.pk).update(status=ChunkStatus.SENT)
    MigrationJob.objects.filter(pk=job.pk).update(sent_customers=10)
    with django_capture_on_commit_callbacks(execute=True):
        job_finish_if_done(job_id=job.pk)

    assert [email.subject for email in mailoutbox] == [
        f"[Masivo console] Job #{job.pk} partially failed: 5 sent, 5 failed of 10 customers",
        f"[Masivo console] Job #{job.pk} succeeded: 10 of 10 customers sent",
    ]


def test_only_endings_are_emailed(operator, notify, mailoutbox, django_capture_on_commit_callbacks):
    job = running_job(user=operator, chunks=[("pending", 5)])
    MigrationJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job_transition(pk=job.pk, to=JobStatus.RUNNING)

    assert callbacks == []
    assert notify_job_finished(job_id=job.pk) is False
    assert mailoutbox == []


def test_nobody_to_email_sends_nothing(
    operator, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.MIGRATION_NOTIFY_EMAILS = []
    operator.email = ""
    operator.save()
    job = running_job(user=operator, chunks=[("sent", 5)], sent=5)

    with django_capture_on_commit_callbacks(execute=True):
        job_finish_if_done(job_id=job.pk)

    assert mailoutbox == []


def test_the_link_defaults_to_the_local_console(
    operator, settings, mailoutbox, django_capture_on_commit_callbacks
):
    del settings.CONSOLE_BASE_URL
    job = running_job(user=operator, chunks=[("sent", 5)], sent=5)

    with django_capture_on_commit_callbacks(execute=True):
        job_finish_if_done(job_id=job.pk)

    assert (
        f"http://127.0.0.1:8000/admin/migrations_jobs/migrationjob/{job.pk}/change/"
        in mailoutbox[0].body
    )


def test_a_mail_server_that_fails_does_not_disturb_the_job(
    operator, notify, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def refuse(self, fail_silently=False):
        raise ConnectionRefusedError("no mail server")

    monkeypatch.setattr(EmailMessage, "send", refuse)
    job = running_job(user=operator, chunks=[("sent", 5)], sent=5)

    with (
        caplog.at_level(logging.ERROR, logger="migrations_jobs"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        ended = job_finish_if_done(job_id=job.pk)

    assert ended.status == JobStatus.SUCCEEDED
    assert f"Could not email the outcome of job #{job.pk}" in caplog.text


def test_the_email_of_a_job_with_history_counts_its_transactions_and_events(
    operator, notify, mailoutbox, django_capture_on_commit_callbacks
):
    job = running_job(user=operator, chunks=[("sent", 20)], sent=20)
    MigrationJob.objects.filter(pk=job.pk).update(
        total_transactions=1500,
        sent_transactions=1400,
        failed_transactions=60,
        skipped_transactions=40,
        total_events=30,
        sent_events=30,
    )

    with django_capture_on_commit_callbacks(execute=True):
        job_finish_if_done(job_id=job.pk)

    body = mailoutbox[0].body
    assert "partially failed" in mailoutbox[0].subject
    assert "Transactions: 1,500 (1,400 sent, 60 failed, 40 left out)" in body
    assert "Events: 30 (30 sent, 0 failed, 0 left out)" in body
