"""Validation of a batch's history: whose it is, each row against the contract, the balance
rule (transactions add up exactly to the balance, per customer and reward), and what fits
one request. And the history's request bodies, as a dry run or a job builds them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from customers.models import (
    CustomerProblem,
    Outcome,
    StagedEvent,
    StagedTransaction,
    StagingBatch,
)
from customers.payload.history import EVENTS, TRANSACTIONS, history_body, history_chunks
from customers.reconciliation import batch_reconciliation, reconciliation_csv
from customers.services import batch_validate
from tests.factories import BalanceFactory, BatchFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

POINTS = uuid.UUID("3c90c3cc-0d44-4b50-8888-8dd25736052a")
CASHBACK = uuid.UUID("9b1e2d4f-7a6c-4e11-9d2a-0f3b5c7e8a90")
WHEN = dt.datetime(2023, 1, 2, 10, 0, tzinfo=dt.UTC)
Code = CustomerProblem.Code


def transaction(customer=None, *, legacy_id=None, batch=None, amount, reward=POINTS, **extra):
    fields = {"type": "ACCUMULATION", "issued_at": WHEN, **extra}
    return StagedTransaction.objects.create(
        batch=batch or customer.batch,
        customer=customer,
        customer_legacy_id=legacy_id or customer.legacy_id,
        reward_id=reward,
        amount=Decimal(amount),
        **fields,
    )


def event(customer, **extra):
    fields = {"type": "PURCHASE", "issued_at": WHEN, "resolved_at": WHEN, **extra}
    return StagedEvent.objects.create(
        batch=customer.batch, customer=customer, customer_legacy_id=customer.legacy_id, **fields
    )


def problems(batch) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for p in CustomerProblem.objects.filter(batch=batch).order_by("legacy_id", "pk"):
        found.setdefault(p.legacy_id, []).append((p.field, p.message))
    return found


@pytest.fixture
def batch(importer):
    return BatchFactory(created_by=importer)


def test_transactions_that_add_up_to_the_balance_validate(batch, importer):
    ann = CustomerFactory(batch=batch, legacy_id="000001")
    BalanceFactory(customer=ann, reward_id=POINTS, amount=Decimal("123"))
    transaction(ann, amount="150")
    transaction(ann, amount="-27", type="REDEMPTION")
    event(ann, order={"purchase_id": "ORD-77", "value": 150.0})

    summary = batch_validate(batch=batch, user=importer)

    assert problems(batch) == {}
    assert summary.is_validated


def test_a_mismatch_names_the_reward_the_balance_the_sum_and_the_difference(batch, importer):
    ann = CustomerFactory(batch=batch, legacy_id="000001")
    bob = CustomerFactory(batch=batch, legacy_id="000002")
    BalanceFactory(customer=ann, reward_id=POINTS, amount=Decimal("123.50"))
    transaction(ann, amount="150")
    transaction(ann, amount="-27", type="REDEMPTION")
    transaction(bob, amount="5", reward=CASHBACK)  # no balance for it: counts as 0

    summary = batch_validate(batch=batch, user=importer)

    found = problems(batch)
    assert found["000001"] == [
        (
            "transactions",
            f"The transactions of reward {POINTS} add up to 123, but the balance is 123.5: a "
            "difference of -0.5. Fix the transactions or the balance so they match.",
        )
    ]
    assert "add up to 5, but the balance is 0: a difference of 5." in found["000002"][0][1]
    assert summary.invalid == 2
    assert not summary.is_validated


def test_history_of_a_customer_neither_staged_nor_sent_blocks_the_batch(batch, importer):
    CustomerFactory(batch=batch, legacy_id="000001")
    transaction(legacy_id="000404", batch=batch, amount="10")
    transaction(legacy_id="000404", batch=batch, amount="5")

    summary = batch_validate(batch=batch, user=importer)

    [problem] = CustomerProblem.objects.filter(batch=batch, legacy_id="000404")
    assert (problem.customer_id, problem.code, problem.field) == (
        None,
        Code.MISSING_CUSTOMER,
        "transactions",
    )
    assert problem.message.startswith("Customer “000404” is neither staged in this batch")
    assert "the transactions file has rows of it (2)" in problem.message
    assert summary.valid == 1
    assert not summary.is_validated


def test_history_of_a_customer_sent_before_is_held_to_the_balance_it_was_sent_with(batch, importer):
    earlier = BatchFactory(created_by=importer, status=StagingBatch.Status.SUBMITTED)
    sent = CustomerFactory(batch=earlier, legacy_id="000009", outcome=Outcome.SENT)
    BalanceFactory(customer=sent, reward_id=POINTS, amount=Decimal("40"))
    CustomerFactory(batch=batch, legacy_id="000001")
    transaction(legacy_id="000009", batch=batch, amount="40")

    assert batch_validate(batch=batch, user=importer).is_validated

    transaction(legacy_id="000009", batch=batch, amount="1")
    summary = batch_validate(batch=batch, user=importer)

    assert "add up to 41, but the balance is 40" in problems(batch)["000009"][0][1]
    assert not summary.is_validated


def test_history_staged_before_its_customer_is_linked_at_validation(batch, importer):
    row = transaction(legacy_id="000001", batch=batch, amount="7")
    ann = CustomerFactory(batch=batch, legacy_id="000001")
    BalanceFactory(customer=ann, reward_id=POINTS, amount=Decimal("7"))

    assert batch_validate(batch=batch, user=importer).is_validated
    row.refresh_from_db()
    assert row.customer == ann


def test_each_row_is_checked_against_the_contract_naming_its_file_row(batch, importer):
    ann = CustomerFactory(batch=batch, legacy_id="000001")
    BalanceFactory(customer=ann, reward_id=POINTS, amount=Decimal("10"))
    transaction(ann, amount="10", type="", source_row=4)
    event(ann, type="", source_row=2)

    batch_validate(batch=batch, user=importer)

    fields = dict(problems(batch)["000001"])
    assert fields["transactions.type"].startswith("Row 4 of the transactions file: Required")
    assert fields["events.type"].startswith("Row 2 of the events file: Required")
    ann.refresh_from_db()
    assert not ann.is_valid


def test_a_customer_with_more_transactions_than_one_request_carries_is_refused(
    batch, importer, settings
):
    settings.MASIVO_TX_MAX_ITEMS = 3
    ann = CustomerFactory(batch=batch, legacy_id="000001")
    BalanceFactory(customer=ann, reward_id=POINTS, amount=Decimal("4"))
    for _ in range(4):
        transaction(ann, amount="1")

    batch_validate(batch=batch, user=importer)

    assert problems(batch)["000001"] == [
        (
            "transactions",
            "Has 4 transactions; one request carries at most 3, and a customer's transactions "
            "cannot be split over requests. Leave out the oldest ones or merge them.",
        )
    ]


def test_excluding_a_customer_leaves_its_history_out(batch, importer):
    ann = CustomerFactory(batch=batch, legacy_id="000001", is_excluded=True)
    CustomerFactory(batch=batch, legacy_id="000002")
    transaction(ann, amount="99")  # no balance: would not reconcile

    summary = batch_validate(batch=batch, user=importer)

    assert problems(batch) == {}
    assert summary.is_validated
    assert list(history_chunks(kind=TRANSACTIONS, batch=batch)) == []


# --- bodies -----------------------------------------------------------------------------------


def test_a_transactions_body_is_exact_and_leaves_absent_values_out(batch):
    ann = CustomerFactory(batch=batch, legacy_id="legacy-000123")
    first = transaction(
        ann,
        amount="150.50",
        resolved_at=WHEN + dt.timedelta(seconds=5),
        brand_id="brand-1",
        event={"type": "PURCHASE", "order": {"purchase_id": "ORD-77", "value": 150.0}},
    )
    second = transaction(ann, amount="-27", type="REDEMPTION", details="")

    body = json.loads(history_body(kind=TRANSACTIONS, row_ids=[second.pk, first.pk]))

    assert body == {
        "customers": [
            {
                "id": "legacy-000123",
                "transactions": [
                    {
                        "reward_id": str(POINTS),
                        "type": "ACCUMULATION",
                        "amount": 150.5,
                        "issued_at": "2023-01-02T10:00:00Z",
                        "resolved_at": "2023-01-02T10:00:05Z",
                        "brand_id": "brand-1",
                        "event": {
                            "type": "PURCHASE",
                            "order": {"purchase_id": "ORD-77", "value": 150.0},
                        },
                    },
                    {
                        "reward_id": str(POINTS),
                        "type": "REDEMPTION",
                        "amount": -27,
                        "issued_at": "2023-01-02T10:00:00Z",
                    },
                ],
            }
        ]
    }


def test_an_events_body_marks_events_fulfilled_unless_the_file_says_otherwise(batch):
    ann = CustomerFactory(batch=batch, legacy_id="000001")
    kept = event(ann, order={"purchase_id": "ORD-1"})
    unfulfilled = event(ann, fulfilled=False)

    body = json.loads(history_body(kind=EVENTS, row_ids=[kept.pk, unfulfilled.pk]))

    entries = body["customers"][0]["events"]
    assert [(e["fulfilled"], e["order"]) for e in entries] == [
        (True, {"purchase_id": "ORD-1"}),
        (False, {}),
    ]


def test_requests_keep_a_customers_transactions_together_and_split_events(batch, settings):
    settings.MASIVO_TX_MAX_ITEMS = settings.MASIVO_EVENTS_MAX_ITEMS = 3
    settings.MASIVO_TX_MAX_CUSTOMERS = settings.MASIVO_EVENTS_MAX_CUSTOMERS = 2
    customers = [
        CustomerFactory(batch=batch, legacy_id=f"00000{i}", is_valid=True) for i in range(1, 5)
    ]
    counts = {"000001": 2, "000002": 2, "000003": 1, "000004": 1}
    for customer in customers:
        for _ in range(counts[customer.legacy_id]):
            transaction(customer, amount="1")
            event(customer)

    def owners(kind: str) -> list[list[str]]:
        model = StagedTransaction if kind == TRANSACTIONS else StagedEvent
        return [
            [model.objects.get(pk=pk).customer_legacy_id for pk in chunk]
            for chunk in history_chunks(kind=kind, batch=batch)
        ]

    assert owners(TRANSACTIONS) == [
        ["000001", "000001"],
        ["000002", "000002", "000003"],
        ["000004"],
    ]
    assert owners(EVENTS) == [
        ["000001", "000001", "000002"],
        ["000002", "000003"],
        ["000004"],
    ]


# --- the reconciliation report ---------------------------------------------------------------


def test_the_report_totals_each_reward_and_names_who_does_not_match(batch, importer):
    ann = CustomerFactory(batch=batch, legacy_id="000001", is_valid=True)
    bob = CustomerFactory(batch=batch, legacy_id="000002", is_valid=True)
    cid = CustomerFactory(batch=batch, legacy_id="000003", is_valid=True)
    BalanceFactory(customer=ann, reward_id=POINTS, amount=Decimal("123"))
    BalanceFactory(customer=bob, reward_id=POINTS, amount=Decimal("10"))
    transaction(ann, amount="150")
    transaction(ann, amount="-27")
    transaction(cid, amount="4", reward=CASHBACK)

    report = batch_reconciliation(batch=batch)

    points, cashback = sorted(report.rewards, key=lambda r: r.reward_id != str(POINTS))
    assert (points.balances_in_files, points.transactions_in_files) == (133, 123)
    assert (points.balances_to_send, points.transactions_to_send, points.balances_sent) == (
        133,
        123,
        0,
    )
    assert (cashback.balances_in_files, cashback.transactions_in_files) == (0, 4)
    assert [(m.legacy_id, m.reward_id, m.difference) for m in report.mismatches] == [
        ("000003", str(CASHBACK), 4)
    ]
    assert report.history_without_balance == ["000003"]
    assert report.balance_without_transactions == ["000002"]
    lines = "".join(reconciliation_csv(report)).splitlines()
    assert lines[0].startswith("reward,balances in the files,transactions in the files")
    assert f"000003,{CASHBACK},0,4,4" in lines


def test_batch_reconcile_exits_1_on_a_mismatch_and_writes_the_csv(batch, importer, tmp_path):
    UserFactory(
        username="auditor",
        perms=["customers.view_stagingbatch", "customers.view_stagedcustomer"],
    )
    ann = CustomerFactory(batch=batch, legacy_id="000001", is_valid=True)
    BalanceFactory(customer=ann, reward_id=POINTS, amount=Decimal("5"))
    transaction(ann, amount="5")
    out = StringIO()
    call_command("batch_reconcile", batch.name, "--user", "auditor", stdout=out)
    assert f"Batch “{batch.name}” reconciles." in out.getvalue()

    transaction(ann, amount="1")
    report = tmp_path / "report.csv"
    out = StringIO()
    with pytest.raises(CommandError, match="1 customer balance"):
        call_command(
            "batch_reconcile", batch.name, "--user", "auditor", "--csv", str(report), stdout=out
        )
    assert "Customer “000001”, reward" in out.getvalue()
    assert "difference 1." in out.getvalue()
    assert f"000001,{POINTS},5,6,1" in report.read_text()


def test_the_dry_run_writes_the_bodies_of_the_endpoint_asked_for(batch, importer, tmp_path):
    UserFactory(
        username="auditor",
        perms=["customers.view_stagingbatch", "customers.view_stagedcustomer"],
    )
    ann = CustomerFactory(batch=batch, legacy_id="000001")
    BalanceFactory(customer=ann, reward_id=POINTS, amount=Decimal("3"))
    transaction(ann, amount="3")
    event(ann, order={"purchase_id": "ORD-1"})
    assert batch_validate(batch=batch, user=importer).is_validated

    for endpoint in ("transactions", "events"):
        target = tmp_path / f"{endpoint}.jsonl"
        call_command(
            "batch_dry_run", batch.name, str(target), "--user", "auditor",
            "--endpoint", endpoint, stdout=StringIO(),
        )  # fmt: skip
        [line] = target.read_text().splitlines()
        [entry] = json.loads(line)["customers"]
        assert (entry["id"], len(entry[endpoint])) == ("000001", 1)
