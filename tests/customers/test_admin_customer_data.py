"""Customers' personal data in the admin: the batch's dry run, its problems and the
problems of a background file need the permission to see customers; the batch's page
offers no link its user may not follow; each download is logged, without its content."""

import logging

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from customers.models import StagedCustomer, StagingBatch, StagingUpload
from customers.services import batch_validate
from tests.customers.importing import stage_sample
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
Status = StagingBatch.Status


@pytest.fixture
def batch_viewer(db):
    """May view staging batches (and problems), and nothing about their customers."""
    return UserFactory(
        username="batch-viewer",
        perms=["customers.view_stagingbatch", "customers.view_customerproblem"],
    )


@pytest.fixture
def validated(client, importer, batch, samples):
    client.force_login(importer)
    stage_sample(client, batch, samples, "customers")
    assert batch_validate(batch=batch, user=importer).is_validated
    batch.refresh_from_db()
    return batch


@pytest.fixture
def with_problems(client, importer, batch, samples):
    client.force_login(importer)
    stage_sample(client, batch, samples, "customers")
    StagedCustomer.objects.filter(batch=batch, legacy_id="000777").update(email="ana@broken")
    batch_validate(batch=batch, user=importer)
    batch.refresh_from_db()
    assert batch.status == Status.DRAFT
    return batch


def dry_run_url(batch) -> str:
    return reverse("admin:customers_stagingbatch_dry_run", args=[batch.pk])


def page(client, batch) -> str:
    response = client.get(reverse("admin:customers_stagingbatch_change", args=[batch.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_dry_run_is_refused_to_a_user_who_may_only_view_batches(
    client, batch_viewer, validated
):
    client.force_login(batch_viewer)

    assert client.get(dry_run_url(validated)).status_code == 403
    assert "dry-run-link" not in page(client, validated)


def test_the_batch_page_links_to_customers_data_only_for_those_who_may_see_it(
    client, importer, batch_viewer, with_problems
):
    problems = reverse("admin:customers_customerproblem_changelist")
    customers = reverse("admin:customers_stagedcustomer_changelist")
    client.force_login(importer)
    html = page(client, with_problems)
    assert problems in html
    assert customers in html

    client.force_login(batch_viewer)
    html = page(client, with_problems)

    assert 'id="batch-problems"' in html  # the count is said ...
    assert problems not in html  # ... without a link to what it may not read
    assert customers not in html
    assert client.get(problems, {"batch__id__exact": with_problems.pk}).status_code == 403


def test_the_dry_run_download_is_logged_with_who_and_which_batch_not_what(
    client, importer, validated, caplog
):
    caplog.set_level(logging.INFO, logger="customers.access")
    client.force_login(importer)

    response = client.get(dry_run_url(validated))
    body = b"".join(response.streaming_content)

    [record] = [r for r in caplog.records if r.name == "customers.access"]
    assert record.getMessage() == (
        f"Customer data downloaded: dry run of batch {validated.pk} by user importer "
        f"(id {importer.pk})."
    )
    email = StagedCustomer.objects.filter(batch=validated).values_list("email", flat=True)[0]
    assert email.encode() in body
    assert email not in caplog.text


def test_a_background_files_problems_are_shown_only_to_those_who_may_see_customers(
    client, importer, batch_viewer, batch
):
    upload = StagingUpload(
        batch=batch,
        kind="customers",
        file_name="big.csv",
        created_by=importer,
        status=StagingUpload.Status.REFUSED,
        problems=["big.csv: row 2 (id “c1”), column “email”: “ana@broken” is not an email."],
    )
    upload.file.save("big.csv", ContentFile(b"id\nc1\n"), save=False)
    upload.save()
    url = reverse("admin:customers_stagingbatch_upload", args=[batch.pk, upload.pk])

    client.force_login(importer)
    assert "ana@broken" in client.get(url).content.decode()
    client.force_login(batch_viewer)
    html = client.get(url).content.decode()

    assert "ana@broken" not in html
    assert 'id="import-problems-hidden"' in html
