"""The API's reconciliation of a batch's history with its balances, and its dry run of the
history endpoints."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from django.urls import reverse

from customers.models import StagedTransaction
from customers.services import batch_validate
from tests.factories import BalanceFactory, BatchFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

POINTS = uuid.UUID("3c90c3cc-0d44-4b50-8888-8dd25736052a")


@pytest.fixture
def batch(importer):
    batch = BatchFactory(created_by=importer, name="api-history")
    ann = CustomerFactory(batch=batch, legacy_id="000001")
    BalanceFactory(customer=ann, reward_id=POINTS, amount=Decimal("10.5"))
    StagedTransaction.objects.create(
        batch=batch,
        customer=ann,
        customer_legacy_id="000001",
        reward_id=POINTS,
        type="ACCUMULATION",
        amount=Decimal("10.5"),
    )
    return batch


@pytest.fixture
def auditor(db):
    return UserFactory(
        username="auditor",
        perms=["customers.view_stagingbatch", "customers.view_stagedcustomer"],
    )


def test_the_reconciliation_answers_totals_and_mismatches(as_user, auditor, batch):
    url = reverse("api:batch-reconciliation", args=[batch.pk])

    body = as_user(auditor).get(url).json()

    assert body["is_matched"] is True
    [reward] = body["rewards"]
    assert reward["reward_id"] == str(POINTS)
    assert Decimal(reward["balances_in_files"]) == Decimal(reward["transactions_in_files"]) == 10.5
    StagedTransaction.objects.update(amount=Decimal("11"))
    body = as_user(auditor).get(url).json()
    assert body["is_matched"] is False
    [mismatch] = body["mismatches"]
    assert (mismatch["legacy_id"], Decimal(mismatch["difference"])) == ("000001", Decimal("0.5"))


def test_the_reconciliation_downloads_as_csv(as_user, auditor, batch):
    url = reverse("api:batch-reconciliation", args=[batch.pk])

    response = as_user(auditor).get(url, {"format": "csv"})

    lines = b"".join(response.streaming_content).decode().splitlines()
    assert response["Content-Type"] == "text/csv"
    assert lines[0].endswith("balances sent,transactions sent")
    assert lines[1] == f"{POINTS},10.5,10.5,0,0,0,0"


def test_the_reconciliation_needs_the_customer_view_permission(as_user, batch):
    viewer = UserFactory(username="viewer", perms=["customers.view_stagingbatch"])
    url = reverse("api:batch-reconciliation", args=[batch.pk])

    assert as_user(viewer).get(url).status_code == 403


def test_the_dry_run_writes_the_endpoint_asked_for(as_user, auditor, batch, importer):
    assert batch_validate(batch=batch, user=importer).is_validated
    url = reverse("api:batch-dry-run", args=[batch.pk])

    response = as_user(auditor).get(url, {"endpoint": "transactions"})
    [line] = b"".join(response.streaming_content).splitlines()

    assert json.loads(line)["customers"][0]["transactions"][0]["amount"] == 10.5
    assert as_user(auditor).get(url, {"endpoint": "pets"}).status_code == 400
