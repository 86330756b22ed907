"""On PostgreSQL the database writes each customer's JSON; it must be the very bytes that
Python writes from the same rows, whatever the values hold."""

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from django.db import connection

from customers.contract import customer_checker
from customers.payload import body_bytes, customer_payloads, customer_payloads_by_pk, customers_body
from customers.payload.rows import payloads_from_rows
from tests.factories import BalanceFactory, CustomerFactory, DeviceFactory, MetricFactory

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="only PostgreSQL writes the JSON itself"
)

UTC = dt.UTC
AWKWARD = 'quote " backslash \\ slash / tab \t newline \n return \r ctrl \x01\x1f del \x7f'
UNICODE = "José Núñez 😀 \u2028 </script> \u00a0"


def python_body(ids: list[int]) -> bytes:
    return body_bytes(list(payloads_from_rows(list(dict.fromkeys(ids))).values()))


def assert_same_bytes(ids: list[int]) -> bytes:
    written = customers_body(ids)
    assert written == python_body(ids)
    return written


def test_awkward_text_is_escaped_as_python_escapes_it(batch):
    customer = CustomerFactory(
        batch=batch,
        legacy_id=AWKWARD,
        name=UNICODE,
        email="  ",
        document_type="\\N",
        document_number="",
        country="{}",
    )
    BalanceFactory(customer=customer, brand_id=AWKWARD, channel_id=UNICODE, store_id="")
    DeviceFactory(customer=customer, device_token=UNICODE, model=AWKWARD, os_version="")
    body = assert_same_bytes([customer.pk])
    sent = json.loads(body)["customers"][0]
    assert sent["id"] == AWKWARD
    assert sent["name"] == UNICODE
    assert sent["email"] == "  "
    assert "document_number" not in sent


@pytest.mark.parametrize(
    "moment",
    [
        dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC),
        dt.datetime(2023, 11, 7, 5, 31, 56, 250000, tzinfo=UTC),
        dt.datetime(2023, 11, 7, 5, 31, 56, 123456, tzinfo=UTC),
        dt.datetime(2023, 11, 7, 5, 31, 56, 1, tzinfo=UTC),
        dt.datetime(2023, 11, 7, 0, 31, 56, 500, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime(1, 1, 1, tzinfo=UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_date_times_are_written_alike(batch, moment):
    customer = CustomerFactory(batch=batch, registration_date=moment, metrics_updated_at=moment)
    BalanceFactory(customer=customer, expiration_date=moment, issued_at=moment)
    DeviceFactory(customer=customer, expires_at=moment, created_at=moment)
    MetricFactory(customer=customer, period_from=moment, last_session=moment)
    body = assert_same_bytes([customer.pk])
    written = json.loads(body)["customers"][0]["registration_date"]
    assert dt.datetime.fromisoformat(written) == moment
    assert written.endswith("Z")


@pytest.mark.parametrize(
    "amount",
    ["0", "-0.5", "123.000000", "123456789.123456", "0.000001", "50.20", "-999999999.999999"],
)
def test_numbers_are_written_alike(batch, amount):
    customer = CustomerFactory(batch=batch)
    BalanceFactory(customer=customer, amount=Decimal(amount))
    MetricFactory(customer=customer, spend_total=Decimal(amount), number_of_purchases=0)
    body = assert_same_bytes([customer.pk])
    balance = json.loads(body, parse_float=Decimal)["customers"][0]["balance"][0]
    assert balance["amount"] == Decimal(amount)


@pytest.mark.parametrize(
    "metadata",
    [
        {"source": "legacy-crm", "segment": "bronze"},
        {"a, b": "c: d", 'say "hi"': ["x, y", {"k: v": None}], "n": [1, 2.5, -3, True, False]},
        {"deep": {"deeper": {"deepest": [[], {}, [1, [2, [3]]]]}}, "empty": {}, "none": None},
        {"é": UNICODE, "bs": AWKWARD, "z": 0, "long key name": 12345678901234567890},
        ["a list", {"of": "things"}],
        [None, 1, {"x": None}],
        {"note": "nullable, but: not null"},
        "text",
        None,
        {},
        [],
    ],
)
def test_metadata_is_written_alike(batch, metadata):
    customer = CustomerFactory(batch=batch, metadata=metadata)
    body = assert_same_bytes([customer.pk])
    sent = json.loads(body)["customers"][0]
    if metadata in (None, {}, []):
        assert "metadata" not in sent
    else:
        assert sent["metadata"] == metadata


def test_metrics_balances_and_devices_are_written_alike(batch):
    tier = uuid.uuid4()
    full = CustomerFactory(batch=batch, metrics_updated_at=dt.datetime(2025, 1, 2, tzinfo=UTC))
    for period in ("this_month", "lifetime", "last_year"):
        MetricFactory(customer=full, period=period, tier_id=tier, number_of_purchases=3)
    MetricFactory(
        customer=full,
        period="this_quarter",
        period_from=None,
        period_to=None,
        tier_id=None,
        spend_total=None,
        number_of_purchases=None,
    )
    for amount in ("3", "1", "2"):
        BalanceFactory(customer=full, amount=Decimal(amount))
    DeviceFactory(customer=full, platform="", model="", os_version="")
    DeviceFactory(customer=full, platform="web", model="", os_version="")
    DeviceFactory(customer=full, expires_at=dt.datetime(2026, 1, 1, tzinfo=UTC))
    updated_only = CustomerFactory(
        batch=batch, metrics_updated_at=dt.datetime(2025, 1, 2, tzinfo=UTC)
    )
    bare = CustomerFactory(batch=batch, name="", email="", status="", registration_date=None)
    body = assert_same_bytes([full.pk, updated_only.pk, bare.pk])
    sent = json.loads(body)["customers"]
    assert list(sent[0]["metrics"]) == [
        "lifetime",
        "last_year",
        "this_month",
        "this_quarter",
        "updated_at",
    ]
    assert sent[0]["metrics"]["this_quarter"] == {}
    assert [b["amount"] for b in sent[0]["balance"]] == [3, 1, 2]
    assert [list(d) for d in sent[0]["devices"]] == [
        ["device_token"],
        ["device_token", "device_info"],
        ["device_token", "device_info", "expires_at"],
    ]
    assert sent[1]["metrics"] == {"updated_at": "2025-01-02T00:00:00Z"}
    assert sent[2] == {"id": bare.legacy_id}


def test_ids_keep_their_order_and_unknown_ones_are_left_out(batch):
    ids = [CustomerFactory(batch=batch).pk for _ in range(4)]
    missing = max(ids) + 1000
    order = [ids[2], missing, ids[0], ids[2], ids[3]]
    body = assert_same_bytes(order)
    assert len(json.loads(body)["customers"]) == 3
    assert list(customer_payloads_by_pk(order)) == [ids[2], ids[0], ids[3]]


def test_payload_dicts_are_read_back_from_the_text_that_is_sent(batch):
    customer = CustomerFactory(batch=batch)
    BalanceFactory(customer=customer, amount=Decimal("0.10"))
    MetricFactory(customer=customer, spend_total=Decimal("12.345"))
    (payload,) = customer_payloads([customer.pk])
    assert payload["balance"][0]["amount"] == Decimal("0.1")
    assert isinstance(payload["metrics"]["lifetime"]["spend_total"], Decimal)
    assert body_bytes([payload]) == customers_body([customer.pk])
    assert customer_checker(strict=True).check(payload) == []


def test_a_thousand_customers_take_one_query(batch, django_assert_num_queries):
    ids = [c.pk for c in CustomerFactory.create_batch(1000, batch=batch)]
    with django_assert_num_queries(1):
        body = customers_body(ids)
    assert len(json.loads(body)["customers"]) == 1000
