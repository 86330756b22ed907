"""The four-eyes rule counts whoever confirms a background file: they put its data into
the batch as much as whoever uploaded it."""

import pytest
from django.urls import reverse

from console.errors import NotPermitted
from customers.models import StagingBatch, StagingUpload
from customers.services import (
    ERR_APPROVE_OWN_BATCH,
    batch_approve,
    batch_may_approve,
    batch_validate,
    upload_check,
    upload_create,
    upload_stage,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
Status = StagingBatch.Status
CUSTOMERS = (
    b"id,name,email,registration_date\n"
    b"bg-1,Ana,ana@example.com,2023-11-07\n"
    b"bg-2,Ben,ben@example.com,2023-11-07\n"
)


@pytest.fixture
def confirmer(db):
    """May import and approve; did not create the batch nor upload the file."""
    return UserFactory(
        username="confirmer",
        perms=[
            "customers.import_stagingbatch",
            "customers.view_stagingbatch",
            "customers.view_stagedcustomer",
            "customers.approve_stagingbatch",
        ],
    )


@pytest.fixture
def ready(batch, importer) -> StagingUpload:
    """A background file uploaded by the importer, checked and ready to be confirmed."""
    upload = upload_create(
        batch=batch, kind="customers", file_name="big.csv", content=CUSTOMERS, user=importer
    )
    upload = upload_check(upload_id=upload.pk)
    assert upload.status == StagingUpload.Status.READY
    return upload


def test_the_confirmer_of_a_background_file_cannot_approve_the_batch(
    client, batch, importer, confirmer, ready
):
    client.force_login(confirmer)
    url = reverse("admin:customers_stagingbatch_upload", args=[batch.pk, ready.pk])
    assert client.post(url).status_code == 302
    assert upload_stage(upload_id=ready.pk).status == StagingUpload.Status.STAGED
    assert batch_validate(batch=batch, user=importer).is_validated
    batch.refresh_from_db()

    assert not batch_may_approve(batch=batch, user=confirmer)
    with pytest.raises(NotPermitted) as raised:
        batch_approve(batch=batch, user=confirmer)

    assert str(raised.value) == ERR_APPROVE_OWN_BATCH % {"batch": batch.name}
    batch.refresh_from_db()
    assert (batch.status, batch.approved_by) == (Status.VALIDATED, None)
