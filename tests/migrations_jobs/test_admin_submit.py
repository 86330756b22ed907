"""Submitting a batch from its page: the step, its confirmation page with the pace's numbers,
the job it starts; and what the page of a submitted batch shows of its jobs."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from customers.admin.batches import StagingBatchAdmin
from customers.models import Outcome, StagedCustomer, StagingBatch
from migrations_jobs.admin.batches import SubmittableBatchAdmin
from migrations_jobs.models import MigrationJob
from tests.factories import UserFactory
from tests.worker import approved_batch, validated_batch

pytestmark = pytest.mark.django_db
Status = StagingBatch.Status


@pytest.fixture
def pace(settings):
    """The contract's defaults: 1,000 customers a request, one every 5 s, 250 an hour."""
    settings.MIGRATION_CHUNK_SIZE = 1000
    settings.MIGRATION_MIN_INTERVAL_S = 5
    settings.MIGRATION_HOURLY_CAP = 250
    return settings


def step_url(batch, step="submit") -> str:
    return reverse("admin:customers_stagingbatch_step", args=[batch.pk, step])


def change_url(batch) -> str:
    return reverse("admin:customers_stagingbatch_change", args=[batch.pk])


def approved_without_fingerprint(*, creator, size: int) -> StagingBatch:
    """An approved batch of ``size`` customers, for pages that only read it."""
    batch = validated_batch(creator=creator, size=size)
    StagingBatch.objects.filter(pk=batch.pk).update(status=Status.APPROVED)
    batch.refresh_from_db()
    return batch


def last_message(response):
    return list(response.context["messages"])[-1]


def test_the_batch_admin_is_extended_by_the_jobs_app():
    registered = admin.site.get_model_admin(StagingBatch)

    assert isinstance(registered, SubmittableBatchAdmin)
    assert isinstance(registered, StagingBatchAdmin)
    assert [step.name for step in registered.steps] == ["validate", "approve", "reopen", "submit"]


def test_submit_is_offered_for_approved_batches_to_who_may_submit(client, importer, approver):
    approved = approved_without_fingerprint(creator=importer, size=3)
    validated = validated_batch(creator=importer, size=3)

    client.force_login(approver)
    assert step_url(approved) in client.get(change_url(approved)).content.decode()
    assert step_url(validated) not in client.get(change_url(validated)).content.decode()

    client.force_login(importer)  # may change batches, not submit them
    assert step_url(approved) not in client.get(change_url(approved)).content.decode()
    assert client.get(step_url(approved)).status_code == 403


def test_confirmation_says_how_many_requests_and_how_long(client, importer, approver, pace):
    batch = approved_without_fingerprint(creator=importer, size=2340)
    client.force_login(approver)

    page = client.get(step_url(batch))

    text = page.content.decode()
    assert (
        "2,340 customers in 3 requests; at the configured pace (one request every 5 seconds, "
        "at most 250 an hour) about 15 seconds."
    ) in text
    assert "hourly cap" not in text
    assert f"Requests go to {pace.MASIVO_BASE_URL}." in text
    batch.refresh_from_db()
    assert batch.status == Status.APPROVED  # a GET changes nothing
    assert not MigrationJob.objects.exists()


def test_confirmation_warns_when_the_hourly_cap_sets_the_pace(client, importer, approver, pace):
    pace.MIGRATION_CHUNK_SIZE = 10
    batch = approved_without_fingerprint(creator=importer, size=3000)
    client.force_login(approver)

    text = client.get(step_url(batch)).content.decode()

    # 250 requests in the first hour, the other 50 at one every 5 seconds after it.
    assert "3,000 customers in 300 requests;" in text
    assert "about 1 hour 4 minutes." in text
    assert (
        "The hourly cap sets the pace: Masivo takes at most 250 requests an hour, so these "
        "300 requests take over an hour."
    ) in text


def test_confirmation_without_a_pace_says_so(client, importer, approver, pace):
    pace.MIGRATION_MIN_INTERVAL_S = 0
    pace.MIGRATION_HOURLY_CAP = 0
    batch = approved_without_fingerprint(creator=importer, size=1)
    client.force_login(approver)

    text = client.get(step_url(batch)).content.decode()

    assert "1 customer in 1 request; no pace is configured" in text


def test_confirmation_counts_only_valid_included_customers(client, importer, approver, pace):
    batch = approved_without_fingerprint(creator=importer, size=1001)
    StagedCustomer.objects.filter(pk__in=batch.customers.order_by("pk")[:1]).update(
        is_excluded=True
    )
    client.force_login(approver)

    text = client.get(step_url(batch)).content.decode()

    assert "1,000 customers in 1 request;" in text


def test_submit_by_post_starts_the_job_and_links_to_it(client, importer, approver, pace):
    batch = approved_batch(creator=importer, approver=approver, size=5)
    client.force_login(approver)

    response = client.post(step_url(batch), follow=True)

    job = MigrationJob.objects.get()
    assert (job.batch, job.started_by, job.total_customers) == (batch, approver, 5)
    batch.refresh_from_db()
    assert batch.status == Status.SUBMITTED
    message = last_message(response)
    job_url = reverse("admin:migrations_jobs_migrationjob_change", args=[job.pk])
    assert str(message) == (
        f'Batch “{batch.name}” is submitted as job <a href="{job_url}">#{job.pk}</a>: '
        "5 customers in 1 request. Follow it on the job's page."
    )
    assert f'<a href="{job_url}">#{job.pk}</a>' in response.content.decode()  # a real link


def test_submit_without_permission_is_refused(client, importer, approver):
    batch = approved_batch(creator=importer, approver=approver, size=2)
    client.force_login(UserFactory(username="looker", perms=["customers.view_stagingbatch"]))

    response = client.post(step_url(batch))

    assert response.status_code == 403
    assert not MigrationJob.objects.exists()


def test_submit_of_a_batch_that_is_not_approved_is_refused(client, importer, approver):
    batch = validated_batch(creator=importer, size=2)
    client.force_login(approver)

    asked = client.get(step_url(batch), follow=True)
    posted = client.post(step_url(batch), follow=True)

    assert "is not possible" in str(last_message(asked))
    assert str(last_message(posted)) == (
        f"Batch “{batch.name}” is validated: only an approved batch can be submitted."
    )
    assert not MigrationJob.objects.exists()


def test_submitted_batch_shows_outcomes_and_its_jobs(client, importer, approver, pace):
    batch = approved_batch(creator=importer, approver=approver, size=6)
    client.force_login(approver)
    client.post(step_url(batch))
    job = MigrationJob.objects.get()
    customers = list(batch.customers.order_by("pk"))
    StagedCustomer.objects.filter(pk__in=[c.pk for c in customers[:4]]).update(outcome=Outcome.SENT)
    StagedCustomer.objects.filter(pk=customers[4].pk).update(outcome=Outcome.FAILED)
    MigrationJob.objects.filter(pk=job.pk).update(sent_customers=4, failed_customers=1)
    client.force_login(
        UserFactory(
            username="watcher",
            perms=[
                "customers.view_stagingbatch",
                "customers.view_stagedcustomer",
                "migrations_jobs.view_migrationjob",
            ],
        )
    )

    page = client.get(change_url(batch)).content.decode()

    customers_url = reverse("admin:customers_stagedcustomer_changelist")
    assert f"{customers_url}?batch__id__exact={batch.pk}&amp;outcome__exact=sent" in page
    assert 'class="console-count console-count-sent">4<' in page
    assert 'class="console-count console-count-failed">1<' in page
    assert 'class="console-count console-count-not_sent">1<' in page
    job_url = reverse("admin:migrations_jobs_migrationjob_change", args=[job.pk])
    assert f'<a href="{job_url}">#{job.pk}</a>' in page
    assert "4 / 6" in page
    history = reverse("admin:migrations_jobs_migrationjob_changelist")
    assert f"{history}?batch__id__exact={batch.pk}" in page


def test_batch_page_lists_jobs_only_to_who_may_see_them(client, importer, approver):
    batch = approved_batch(creator=importer, approver=approver, size=2)
    client.force_login(approver)
    client.post(step_url(batch), follow=True)
    job = MigrationJob.objects.get()

    page = client.get(change_url(batch)).content.decode()  # the approver may not view jobs

    assert "console-count-sent" in page
    assert reverse("admin:migrations_jobs_migrationjob_change", args=[job.pk]) not in page


def test_batch_page_counts_outcomes_without_linking_customers_for_who_may_not_see_them(
    client, importer, approver
):
    batch = approved_batch(creator=importer, approver=approver, size=2)
    client.force_login(approver)
    client.post(step_url(batch), follow=True)
    client.force_login(UserFactory(username="counter", perms=["customers.view_stagingbatch"]))

    page = client.get(change_url(batch)).content.decode()

    assert '<span class="console-count console-count-not_sent">' in page
    assert reverse("admin:customers_stagedcustomer_changelist") not in page
