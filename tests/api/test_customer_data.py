"""Customers' personal data through the API: a batch's dry run and its problems need the
permission to see customers, not only the batch's; a download is logged, without its
content; and a batch cannot be named as if it were an id."""

import logging

import pytest
from django.urls import reverse

from customers.models import StagedCustomer, StagingBatch
from customers.services import CUSTOMER_DATA_PERMISSION
from migrations_jobs.api.permissions import ERR_MISSING_PERMISSION
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"api:{name}", args=args)


@pytest.fixture
def batch_viewer(db):
    """May view staging batches, and nothing about their customers."""
    return UserFactory(username="batch-viewer", perms=["customers.view_stagingbatch"])


@pytest.fixture
def validated(as_user, importer, batch, upload_sample):
    client = as_user(importer)
    assert upload_sample(client, batch.pk, "customers").status_code == 201
    assert client.post(url("batch-validate", batch.pk)).json()["is_validated"]
    return batch


@pytest.fixture
def with_problems(as_user, importer, batch, upload_sample):
    client = as_user(importer)
    assert upload_sample(client, batch.pk, "customers").status_code == 201
    StagedCustomer.objects.filter(batch=batch, legacy_id="000777").update(email="ana@broken")
    client.post(url("batch-validate", batch.pk))
    assert batch.problems.exists()
    return batch


def assert_needs_customer_data(response) -> None:
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error"] == "permission_denied"
    assert body["details"] == ERR_MISSING_PERMISSION % {"permission": CUSTOMER_DATA_PERMISSION}


def test_the_dry_run_is_refused_to_a_user_who_may_only_view_batches(
    as_user, batch_viewer, validated
):
    assert_needs_customer_data(as_user(batch_viewer).get(url("batch-dry-run", validated.pk)))


def test_the_problems_are_refused_to_a_user_who_may_only_view_batches(
    as_user, batch_viewer, with_problems
):
    response = as_user(batch_viewer).get(url("batch-problems", with_problems.pk))

    assert_needs_customer_data(response)
    assert b"ana@broken" not in response.content


def test_the_dry_run_download_is_logged_with_who_and_which_batch_not_what(
    as_user, approver, validated, caplog
):
    caplog.set_level(logging.INFO, logger="customers.access")

    response = as_user(approver).get(url("batch-dry-run", validated.pk))
    body = b"".join(response.streaming_content)

    assert response.status_code == 200
    [record] = [r for r in caplog.records if r.name == "customers.access"]
    message = record.getMessage()
    assert message == (
        f"Customer data downloaded: dry run of batch {validated.pk} by user approver "
        f"(id {approver.pk})."
    )
    email = StagedCustomer.objects.filter(batch=validated).values_list("email", flat=True)[0]
    assert email.encode() in body
    assert email not in caplog.text


@pytest.mark.parametrize("name", ["7", "id:7", " 42 "])
def test_a_batch_cannot_be_named_as_an_id(as_user, importer, name):
    response = as_user(importer).post(url("batch-list"), {"name": name}, format="json")

    assert response.status_code == 400, response.content
    [message] = response.json()["fields"]["name"]
    assert "stands for a batch's id" in message
    assert not StagingBatch.objects.exists()
