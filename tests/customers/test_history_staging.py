"""Transactions and events files staged into a batch: exact values (decimals, dates in UTC,
dotted columns assembled into ``event`` and ``order``), every format, the link to the
batch's customers, and the problems that refuse a file, by row and column."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from customers.json_widgets import JSONValueWidget, json_number
from customers.models import StagedEvent, StagedTransaction
from customers.staging import batch_stage_file
from customers.widgets import BooleanWidget
from tests.customers.importing import csv_rows, to_csv, to_json_rows, to_xlsx
from tests.factories import BatchFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
UTC = dt.UTC
R1 = uuid.UUID("3c90c3cc-0d44-4b50-8888-8dd25736052a")


def stage(batch, kind: str, name: str, content: bytes | Path, **options):
    return batch_stage_file(
        batch=batch, kind=kind, file_name=name, content=content, user=UserFactory(), **options
    )


def staged(batch, kind: str, name: str, content: bytes | Path, **options):
    result = stage(batch, kind, name, content, **options)
    assert not result.has_errors(), result.messages()
    return result


@pytest.fixture
def sample_batch(samples):
    """A batch with the sample customers and balances staged."""
    batch = BatchFactory(name="history")
    for kind in ("customers", "balances"):
        staged(batch, kind, f"{kind}.csv", samples / f"{kind}.csv")
    return batch


def test_the_transactions_sample_stages_with_exact_values(sample_batch, samples):
    result = staged(sample_batch, "transactions", "transactions.csv", samples / "transactions.csv")

    assert result.staged == {"transactions": 27}
    sample_batch.refresh_from_db()
    assert sample_batch.transaction_count == 27
    first = StagedTransaction.objects.get(batch=sample_batch, source_row=2)
    assert first.customer.legacy_id == first.customer_legacy_id == "legacy-000123"
    assert (first.reward_id, first.type, first.amount) == (R1, "ACCUMULATION", Decimal("150"))
    assert first.issued_at == dt.datetime(2024, 1, 2, 10, 0, tzinfo=UTC)
    assert first.resolved_at == dt.datetime(2024, 1, 2, 10, 0, 5, tzinfo=UTC)
    assert (first.brand_id, first.store_id, first.channel_id) == ("brand-1", "store-9", "web")
    assert (first.funded_by, first.details, first.cost) == (
        "brand-1",
        "Purchase ORD-77",
        Decimal("1.5"),
    )
    assert first.event == {
        "type": "PURCHASE",
        "order": {
            "purchase_id": "ORD-77",
            "value": 150,
            "discounted_value": 140,
            "payment_method": "CREDIT",
            "store_id": "store-9",
            "products": [{"sku": "SKU-1", "amount": 2, "value": 75.0}],
        },
    }
    redemption = StagedTransaction.objects.get(batch=sample_batch, source_row=3)
    assert (redemption.type, redemption.amount, redemption.event) == ("REDEMPTION", -27, None)
    assert (redemption.funded_by, redemption.cost) == ("", None)
    # Legacy ids are text; a purchase id keeps its leading zeros.
    zeros = StagedTransaction.objects.get(batch=sample_batch, source_row=9)
    assert zeros.customer.legacy_id == "000777"
    assert zeros.event["order"]["purchase_id"] == "000888"
    assert zeros.event["order"]["discounted_value"] == 580.5


def test_the_sample_transactions_add_up_to_the_sample_balances(sample_batch, samples):
    staged(sample_batch, "transactions", "transactions.csv", samples / "transactions.csv")

    sums: dict[tuple[str, str], Decimal] = {}
    for row in StagedTransaction.objects.filter(batch=sample_batch):
        key = (row.customer_legacy_id, str(row.reward_id))
        sums[key] = sums.get(key, Decimal(0)) + row.amount
    balances = {
        (b.customer.legacy_id, str(b.reward_id)): b.amount
        for b in sample_batch.balances.select_related("customer")
    }
    assert sums == balances


def test_the_events_sample_stages_with_the_order_assembled(sample_batch, samples):
    result = staged(sample_batch, "events", "events.csv", samples / "events.csv")

    assert result.staged == {"events": 5}
    sample_batch.refresh_from_db()
    assert sample_batch.event_count == 5
    event = StagedEvent.objects.get(batch=sample_batch, source_row=3)
    assert event.customer.legacy_id == "legacy-000124"
    assert (event.type, event.fulfilled, event.brand_id) == ("PURCHASE", True, "brand-1")
    assert event.issued_at == dt.datetime(2024, 2, 14, 12, tzinfo=UTC)
    assert event.order == {
        "purchase_id": "ORD-101",
        "value": 80,
        "payment_method": "CASH",
        "channel_id": "store",
        "store_id": "store-0",
        "products": [{"sku": "SKU-7", "amount": 1, "value": 80}],
        "shipping": {"value": 5.5},
        "metadata": {"source": "legacy-pos"},
    }
    assert StagedEvent.objects.get(batch=sample_batch, source_row=4).order["value"] == 45.9
    assert StagedEvent.objects.get(batch=sample_batch, source_row=6).order["shipping"] == {
        "value": 0
    }


def test_rows_link_to_customers_staged_in_the_batch_and_stay_unlinked_otherwise():
    batch = BatchFactory()
    ann = CustomerFactory(batch=batch, legacy_id="ann")
    CustomerFactory(legacy_id="bob")  # staged in another batch only
    content = b"customer_id,type,amount\nann,ACCUMULATION,5\nbob,ACCUMULATION,7\n"

    staged(batch, "transactions", "t.csv", content)

    rows = StagedTransaction.objects.filter(batch=batch).order_by("source_row")
    assert [(r.customer_legacy_id, r.customer_id, r.source_row) for r in rows] == [
        ("ann", ann.pk, 2),
        ("bob", None, 3),
    ]


TX_ROWS = [
    ["customer_id", "type", "amount", "issued_at", "event.type", "event.order.value",
     "event.order.shipping.value", "event.order.shipping.tags", "event.order.redeem"],
    ["ann", "accumulation", "10.50", "2024-01-02T05:00:00-05:00", "PURCHASE", "99.99", "0.5",
     '{"gift": true}', f'[{{"id": "{R1}", "amount": 3}}]'],
    ["ann", "Redemption", "-0.000001", "2024-01-03", "", "", "", "", ""],
]  # fmt: skip


def _formats(rows: list[list]) -> dict[str, bytes]:
    return {
        "csv": to_csv(rows),
        "tsv": to_csv(rows, delimiter="\t"),
        "xlsx": to_xlsx(rows),
        "json": to_json_rows(rows),
    }


@pytest.mark.parametrize("fmt", ["csv", "tsv", "xlsx", "json"])
def test_transactions_stage_the_same_values_from_every_format(fmt):
    batch = BatchFactory()

    staged(batch, "transactions", f"t.{fmt}", _formats(TX_ROWS)[fmt])

    first, second = StagedTransaction.objects.filter(batch=batch).order_by("pk")
    # A known type in any case is written as the list writes it.
    assert (first.type, first.amount, second.type, second.amount) == (
        "ACCUMULATION", Decimal("10.5"), "REDEMPTION", Decimal("-0.000001"),
    )  # fmt: skip
    assert first.issued_at == dt.datetime(2024, 1, 2, 10, tzinfo=UTC)
    assert second.issued_at == dt.datetime(2024, 1, 3, tzinfo=UTC)
    assert first.event == {
        "type": "PURCHASE",
        "order": {
            "value": 99.99,
            "shipping": {"value": 0.5, "tags": {"gift": True}},
            "redeem": [{"id": str(R1), "amount": 3}],
        },
    }
    assert second.event is None
    assert [first.source_row, second.source_row] == ([1, 2] if fmt == "json" else [2, 3])


def test_events_take_typed_cells_from_spreadsheets_and_json_files():
    # A spreadsheet date cell has no zone: it is read in the batch's.
    when = dt.datetime(2024, 3, 1, 9, 30, tzinfo=UTC).replace(tzinfo=None)
    rows = [
        ["customer_id", "type", "fulfilled", "issued_at", "order.value", "order.products"],
        ["ann", "PURCHASE", True, when, 12.5, '[{"sku": "A", "amount": 1}]'],
        ["ann", "PURCHASE", 0, "2024-03-02T00:00:00Z", 7, None],
    ]
    batch = BatchFactory(time_zone="America/Bogota")
    staged(batch, "events", "e.xlsx", to_xlsx(rows))
    document = [
        {"customer_id": "ann", "type": "PURCHASE", "fulfilled": False, "order.value": 12.5,
         "order.products": [{"sku": "A", "amount": 1}], "order.metadata": {"a": [1, 2]}},
    ]  # fmt: skip
    staged(batch, "events", "e.json", json.dumps(document).encode())

    xlsx_true, xlsx_false, from_json = StagedEvent.objects.filter(batch=batch).order_by("pk")
    assert xlsx_true.fulfilled is True
    assert xlsx_true.issued_at == dt.datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    assert xlsx_true.order == {"value": 12.5, "products": [{"sku": "A", "amount": 1}]}
    assert (xlsx_false.fulfilled, xlsx_false.order) == (False, {"value": 7})
    assert from_json.fulfilled is False
    assert from_json.order == {
        "value": 12.5,
        "products": [{"sku": "A", "amount": 1}],
        "metadata": {"a": [1, 2]},
    }


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("true", True), ("TRUE", True), ("1", True), ("yes", True), ("Sí", True), ("SI", True),
        ("false", False), ("0", False), ("No", False), ("NO", False), ("", None), ("  ", None),
    ],
)  # fmt: skip
def test_fulfilled_reads_true_and_false_in_many_spellings(cell, expected):
    assert BooleanWidget().clean(cell) is expected


@pytest.mark.parametrize(
    "text",
    ["150", "150.00", "12.5", "-27", "0.000001", "123456789.123456", "-999999999.999999",
     "0.1", "1e-6", "33.333333"],
)  # fmt: skip
def test_numbers_in_an_order_are_stored_as_json_numbers_that_read_back_exactly(text):
    number = Decimal(text)
    stored = json.loads(json.dumps(json_number(number)))
    assert Decimal(repr(stored)) == number


def test_enums_and_required_fields_are_left_for_validation():
    batch = BatchFactory()
    content = b"customer_id,reward_id,type,amount,event.order.payment_method\nann,,GIFT,,cheque\n"

    staged(batch, "transactions", "t.csv", content)

    row = StagedTransaction.objects.get(batch=batch)
    assert (row.reward_id, row.type, row.amount) == (None, "GIFT", None)
    assert row.event == {"order": {"payment_method": "cheque"}}


def test_bad_cells_are_named_by_row_and_column_and_nothing_is_staged():
    rows = [
        ["customer_id", "reward_id", "amount", "issued_at", "event.order.products",
         "event.order.metadata", "event.order.value"],
        ["ann", "not-a-uuid", "12,5", "31/12/2023", "[{]", "[1]", "1e400"],
        ["bob", str(R1), "1", "2024-01-01", '{"sku": "A"}', "{}", "NaN"],
        ["", str(R1), "1", "2024-01-01", "", "", ""],
    ]  # fmt: skip
    batch = BatchFactory()

    result = stage(batch, "transactions", "t.csv", to_csv(rows))

    where = [(p.row, p.column, p.record) for p in result.problems]
    assert where == [
        (2, "reward_id", "ann"),
        (2, "amount", "ann"),
        (2, "issued_at", "ann"),
        (2, "event.order.products", "ann"),
        (2, "event.order.metadata", "ann"),
        (2, "event.order.value", "ann"),
        (3, "event.order.products", "bob"),
        (3, "event.order.value", "bob"),
        (4, "customer_id", ""),
    ]
    lines = result.messages()
    assert lines[0].startswith("t.csv: row 2 (id “ann”), column “reward_id”: “not-a-uuid” is not")
    assert "is not valid JSON" in lines[3]
    assert "must be a JSON object" in lines[4]
    assert "must be a JSON array" in lines[6]
    assert not StagedTransaction.objects.exists()
    batch.refresh_from_db()
    assert batch.transaction_count == 0


def test_a_bad_fulfilled_value_and_json_constants_are_refused():
    content = b'customer_id,fulfilled,order.products\nann,maybe,[]\nann,true,"[{""value"": NaN}]"\n'

    result = stage(BatchFactory(), "events", "e.csv", content)

    assert [(p.row, p.column) for p in result.problems] == [(2, "fulfilled"), (3, "order.products")]
    assert "“maybe” is not true or false" in result.problems[0].message
    assert not StagedEvent.objects.exists()


def test_unknown_and_repeated_columns_are_refused():
    batch = BatchFactory()
    unknown = stage(
        batch, "events", "e.csv", b"customer_id,colour,order.payment_method\nann,red,X\n"
    )
    repeated = stage(batch, "events", "e.csv", b"customer_id,type,type\nann,X,Y\n")

    [message] = unknown.messages()
    assert message.startswith(
        "e.csv: The headers of this file are not those of a events file, and no mapping was "
        "given. Not matched: “colour”."
    )
    assert unknown.suggested_mapping["fields"]["order.payment_method"] == "order.payment_method"
    assert repeated.messages() == ["e.csv: Column “type” appears more than once."]
    assert not StagedEvent.objects.exists()


def test_a_file_without_customer_id_is_refused():
    result = stage(BatchFactory(), "events", "e.csv", b"type\nPURCHASE\n")

    assert result.messages() == ["e.csv: Required column(s) “customer_id” are missing."]


def test_a_dry_run_checks_and_stages_nothing(samples):
    batch = BatchFactory()
    rows = csv_rows(samples / "events.csv")

    result = staged(batch, "events", "e.csv", to_csv(rows), dry_run=True)

    assert result.staged == {"events": 5}
    assert not StagedEvent.objects.exists()


def test_deleting_a_batch_or_a_customer_takes_its_history_along(sample_batch, samples, importer):
    from customers.services import customer_delete

    staged(sample_batch, "transactions", "t.csv", samples / "transactions.csv")
    staged(sample_batch, "events", "e.csv", samples / "events.csv")
    john = sample_batch.customers.get(legacy_id="legacy-000123")

    customer_delete(customer=john, user=importer)

    sample_batch.refresh_from_db()
    assert (sample_batch.transaction_count, sample_batch.event_count) == (25, 4)
    sample_batch.delete()
    assert not StagedTransaction.objects.exists()
    assert not StagedEvent.objects.exists()


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("[1e400]", "holds a number that is not finite"),
        ('[{"a": Infinity}]', "holds a number that is not finite"),
        ('["\\u0000"]', "holds text that cannot be stored"),
        ('["\\ud800"]', "holds text that cannot be stored"),
        ("[" * 40 + "]" * 40, "is nested more than 32 levels deep"),
        ('["' + "x" * 70_000 + '"]', "at most 64.0"),
        ("{}", "must be a JSON array"),
        ("[1,]", "is not valid JSON"),
    ],
)
def test_a_json_cell_that_cannot_be_stored_or_sent_is_refused(cell, message):
    with pytest.raises(ValueError, match=message):
        JSONValueWidget(shape="array").clean(cell)


def test_a_json_cell_is_read_as_json_reads_it():
    widget = JSONValueWidget(shape="any")
    assert widget.clean(' [{"sku": "é", "value": 1.10, "n": 12345678901234567890}] ') == [
        {"sku": "é", "value": 1.1, "n": 12345678901234567890}
    ]
    assert widget.clean('{"tag": "\\u00e9"}') == {"tag": "é"}
    assert widget.clean({"already": ["parsed"]}) == {"already": ["parsed"]}
