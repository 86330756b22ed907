"""The batch page shows the reconciliation of history and balances once a batch holds
history, to who may see customers; it downloads as CSV, and the dry run offers each
endpoint's bodies."""

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
SEES_CUSTOMERS = ["customers.view_stagingbatch", "customers.view_stagedcustomer"]


@pytest.fixture
def batch(importer):
    batch = BatchFactory(created_by=importer, name="with-history")
    ann = CustomerFactory(batch=batch, legacy_id="000001")
    BalanceFactory(customer=ann, reward_id=POINTS, amount=Decimal("10"))
    for amount in ("12", "-2"):
        StagedTransaction.objects.create(
            batch=batch,
            customer=ann,
            customer_legacy_id="000001",
            reward_id=POINTS,
            type="ACCUMULATION" if amount[0] != "-" else "REDEMPTION",
            amount=Decimal(amount),
        )
    batch.transaction_count = 2
    batch.save()
    return batch


def page(client, batch) -> str:
    return client.get(
        reverse("admin:customers_stagingbatch_change", args=[batch.pk])
    ).content.decode()


def test_the_batch_page_reconciles_history_and_balances(client, batch):
    client.force_login(UserFactory(username="auditor", perms=SEES_CUSTOMERS))

    shown = page(client, batch)

    assert "Reconciliation of history and balances" in shown
    assert "Every customer's transactions add up to its balance" in shown
    assert f"<code>{POINTS}</code>" in shown

    StagedTransaction.objects.filter(amount=Decimal("-2")).update(amount=Decimal("-3"))
    shown = page(client, batch)
    assert "1 balance does not match its customer" in shown
    assert "“000001”, reward" in shown
    assert "difference -1" in shown


def test_the_reconciliation_downloads_as_csv(client, batch):
    client.force_login(UserFactory(username="auditor", perms=SEES_CUSTOMERS))

    response = client.get(reverse("admin:customers_stagingbatch_reconciliation", args=[batch.pk]))

    body = b"".join(response.streaming_content).decode()
    assert (
        response["Content-Disposition"] == 'attachment; filename="with-history-reconciliation.csv"'
    )
    assert f"{POINTS},10,10,0,0,0" in body.splitlines()[1]


def test_the_reconciliation_needs_the_customer_view_permission(client, batch):
    client.force_login(UserFactory(username="viewer", perms=["customers.view_stagingbatch"]))

    assert "Reconciliation of history" not in page(client, batch)
    csv = reverse("admin:customers_stagingbatch_reconciliation", args=[batch.pk])
    assert client.get(csv).status_code == 403


def test_the_dry_run_offers_the_transactions_bodies(client, batch, importer):
    assert batch_validate(batch=batch, user=importer).is_validated
    client.force_login(UserFactory(username="auditor", perms=SEES_CUSTOMERS))
    url = reverse("admin:customers_stagingbatch_dry_run", args=[batch.pk])

    assert f"{url}?endpoint=transactions" in page(client, batch)
    response = client.get(url, {"endpoint": "transactions"})
    [line] = b"".join(response.streaming_content).splitlines()

    assert [len(c["transactions"]) for c in json.loads(line)["customers"]] == [2]
    assert client.get(url, {"endpoint": "pets"}).status_code == 404
