"""The request body's two writers agree: PostgreSQL's (``customers.payload.sql``) writes
byte for byte what Python's (``customers.payload.rows`` and ``body_bytes``, the reference)
writes, over awkward staged data.

Each test counts the customers and values it compared and looks for known awkward values
in both bodies, so it fails if either writer returns nothing.
"""

import datetime as dt
import json
import random
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from customers.contract import parse_datetime_value
from customers.models import StagedBalance, StagedCustomer, StagedDevice, StagedMetric
from customers.payload import body_bytes, customers_body
from customers.payload.rows import payloads_from_rows
from customers.payload.sql import customer_texts
from tests.factories import (
    BalanceFactory,
    BatchFactory,
    CustomerFactory,
    DeviceFactory,
    MetricFactory,
)

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the SQL writer exists only on PostgreSQL; elsewhere Python's is the only one",
)

ZONE = "America/Bogota"  # UTC-05:00, no daylight saving
NAME = "José Ñúñez-Ålvarez 😀 \u2028 </script>"
TIER = uuid.UUID("3c90c3cc-0d44-4b50-8888-8dd25736052a")
METADATA = {
    "origen": "CRM légado",
    "niveles": {"ñ": [1, {"ü": "ß", "vacío": {}}], "señal": None, "sí": True},
    "emoji": "😀",
    "n": [0, -3, 2.5, 12345678901234567890],
}
AMOUNTS = ["50.20", "123.000000", "0.000001", "999999999.999999", "-0.000001", "0.000000", "7"]


def when(text: str) -> dt.datetime:
    """A file's date-time, read as validation reads it for a batch in ``ZONE``."""
    return parse_datetime_value(text, time_zone=ZONE)


def python_body(ids: list[int]) -> bytes:
    return body_bytes(list(payloads_from_rows(ids).values()))


def compare(ids: list[int]) -> tuple[bytes, list[dict]]:
    """Both writers' bodies for ``ids``; asserts they are the same bytes and not empty."""
    by_database = customers_body(ids)
    by_python = python_body(ids)
    assert by_database == by_python
    sent = json.loads(by_database, parse_float=Decimal)["customers"]
    assert len(sent) == len(ids) > 0
    assert [text for _pk, text in customer_texts(ids)] == [
        body_bytes([payload]).decode()[len('{"customers":[') : -2]
        for payload in payloads_from_rows(ids).values()
    ]
    return by_database, sent


def leaves(value: Any) -> int:
    if isinstance(value, dict):
        return sum(leaves(item) for item in value.values())
    if isinstance(value, list):
        return sum(leaves(item) for item in value)
    return 1


# --- Awkward staged customers -----------------------------------------------------------------
def stage_full(batch) -> StagedCustomer:
    customer = CustomerFactory(
        batch=batch,
        legacy_id="000123",
        name=NAME,
        email="jose.nunez@example.com",
        gender="MALE",
        dob=parse_datetime_value("1990-04-01T23:30:00-05:00", as_date=True),
        registration_date=when("2023-11-07 00:31:56"),
        status="ACTIVE",
        document_type="Cédula",
        document_number="0001234567",
        country="Perú",
        metadata=METADATA,
        metrics_updated_at=when("2025-02-21T14:05:42.250+01:00"),
    )
    stage_metrics(customer)
    stage_balances(customer)
    stage_devices(customer)
    return customer


def stage_metrics(customer: StagedCustomer) -> None:
    """Several periods: full, one value, zeros, and all empty."""
    MetricFactory(
        customer=customer,
        period="lifetime",
        period_from=when("2019-01-01"),
        period_to=when("2025-02-21T14:05:42Z"),
        tier_id=TIER,
        last_visit=when("2024-12-10T15:58:01.000001"),
        spend_total=Decimal("50.20"),
        number_of_purchases=10,
    )
    MetricFactory(customer=customer, period="this_year", spend_total=Decimal("0.000001"))
    MetricFactory(
        customer=customer,
        period="last_month",
        spend_total=Decimal("123.000000"),
        number_of_purchases=0,
        last_session=when("2025-01-31 23:59:59"),
    )
    MetricFactory(
        customer=customer, period="this_quarter", spend_total=None, number_of_purchases=None
    )


def stage_balances(customer: StagedCustomer) -> None:
    """Every awkward amount, with and without each optional value."""
    for index, amount in enumerate(AMOUNTS):
        BalanceFactory(
            customer=customer,
            reward_id=TIER,
            amount=Decimal(amount),
            brand_id=["0042", "", "Ñandú S.A."][index % 3],
            store_id="tienda-ü" if index % 2 else "",
            expiration_date=when("2026-11-07T00:31:56") if index % 2 else None,
            issued_at=when("2023-11-07T05:31:56.5-03:00") if index % 3 else None,
        )


def stage_devices(customer: StagedCustomer) -> None:
    """With ``device_info``, without it, and with only part of it."""
    DeviceFactory(customer=customer, device_token="fcm:ñ-001", platform="ios", model="Pixel ç")
    DeviceFactory(customer=customer, device_token="apns:0007", platform="", model="")
    DeviceFactory(
        customer=customer,
        device_token="web:ç",
        platform="",
        os_version="17.1",
        created_at=when("2024-01-01"),
        expires_at=when("2026-01-01 00:00:00.25"),
    )


def stage_partial(batch) -> list[StagedCustomer]:
    """Customers with each kind of child alone, with none, and with empty values."""
    bare = CustomerFactory(
        batch=batch, legacy_id="0000", name="", email="", status="", registration_date=None
    )
    balance_only = CustomerFactory(batch=batch, legacy_id="0001", metadata={})
    BalanceFactory(customer=balance_only, amount=Decimal("0.10"))
    devices_only = CustomerFactory(batch=batch, legacy_id="0002", metadata=[])
    DeviceFactory(customer=devices_only, platform="web", os_version="")
    updated_only = CustomerFactory(
        batch=batch, legacy_id="0003", metrics_updated_at=when("2025-02-21 09:05:42")
    )
    periods_only = CustomerFactory(batch=batch, legacy_id="0004", name="Zoë")
    for period in ("this_semester", "lifetime", "last_year"):
        MetricFactory(customer=periods_only, period=period, spend_total=Decimal("999999999.999999"))
    return [bare, balance_only, devices_only, updated_only, periods_only]


def test_awkward_customers_are_written_to_the_same_bytes(db):
    batch = BatchFactory(time_zone=ZONE)
    staged = [stage_full(batch), *stage_partial(batch)]
    ids = [customer.pk for customer in staged]
    body, sent = compare(ids)
    assert leaves(sent) > 80
    for known in (
        '"id":"000123"',
        json.dumps(NAME, ensure_ascii=False),
        '"registration_date":"2023-11-07T05:31:56Z"',
        '"dob":"1990-04-01T00:00:00Z"',
        '"updated_at":"2025-02-21T13:05:42.25Z"',
        '"last_visit":"2024-12-10T20:58:01.000001Z"',
        '"issued_at":"2023-11-07T08:31:56.5Z"',
        '"spend_total":50.2,',
        '"amount":123,',
        '"amount":0.000001,',
        '"amount":999999999.999999,',
        '"amount":-0.000001,',
        '"amount":0,',
        '"amount":0.1}',
        '"brand_id":"0042"',
        '"vacío":{}',
        '"this_quarter":{}',
        '"metrics":{"updated_at":"2025-02-21T14:05:42Z"}',
    ):
        for written in (body, python_body(ids)):
            assert known in written.decode(), known
    assert b"50.20" not in body
    assert sent[1] == {"id": "0000"}
    assert "metadata" not in sent[2]
    assert "metadata" not in sent[3]
    assert list(sent[5]["metrics"]) == ["lifetime", "last_year", "this_semester"]
    assert [list(device) for device in sent[0]["devices"]] == [
        ["device_token", "device_info"],
        ["device_token"],
        ["device_token", "device_info", "expires_at", "created_at"],
    ]


# --- Random awkward rows ----------------------------------------------------------------------
TEXTS = ["", "0", "007", "Ñandú", "José", "😀", "a\tb", 'say "hi"', "\\N", "ü" * 40, " x "]
MOMENTS = [
    None,
    "2023-11-07T05:31:56Z",
    "2023-11-07 00:31:56",
    "2023-11-07T00:31:56.5-05:00",
    "2023-11-07T00:31:56.000001+14:00",
    "1999-12-31 19:00:00",
    "2024-02-29",
]


def random_customers(batch, generator: random.Random, count: int) -> list[int]:
    """``count`` customers whose every field is drawn from awkward values, with children."""
    customers = StagedCustomer.objects.bulk_create(
        [
            CustomerFactory.build(
                batch=batch,
                legacy_id=f"{index:07d}",
                name=generator.choice(TEXTS),
                email=generator.choice(["", "ñ@example.com", "a@b.co"]),
                gender=generator.choice(["", "MALE", "OTHER"]),
                status=generator.choice(["", "ACTIVE", "INACTIVE"]),
                country=generator.choice(TEXTS),
                registration_date=(m := generator.choice(MOMENTS)) and when(m),
                metrics_updated_at=(m := generator.choice(MOMENTS)) and when(m),
                metadata=generator.choice([None, {}, [], METADATA, {"k": {"ñ": ["😀", None]}}]),
            )
            for index in range(count)
        ]
    )
    random_children(customers, generator)
    return [customer.pk for customer in customers]


def random_children(customers: list[StagedCustomer], generator: random.Random) -> None:
    """0 to 3 balances and devices, and 0 to 3 metric periods, for each customer."""
    children: dict[type, list] = {StagedBalance: [], StagedDevice: [], StagedMetric: []}
    periods = ["lifetime", "this_month", "last_quarter", "this_year"]
    for customer in customers:
        for _ in range(generator.randint(0, 3)):
            children[StagedBalance].append(
                BalanceFactory.build(
                    customer=customer,
                    amount=Decimal(generator.choice(AMOUNTS)),
                    brand_id=generator.choice(TEXTS),
                    issued_at=(m := generator.choice(MOMENTS)) and when(m),
                )
            )
            children[StagedDevice].append(
                DeviceFactory.build(
                    customer=customer,
                    platform=generator.choice(["", "ios", "web"]),
                    model=generator.choice(TEXTS),
                    expires_at=(m := generator.choice(MOMENTS)) and when(m),
                )
            )
        for period in generator.sample(periods, generator.randint(0, 3)):
            children[StagedMetric].append(
                MetricFactory.build(
                    customer=customer,
                    period=period,
                    spend_total=generator.choice([None, *map(Decimal, AMOUNTS)]),
                    number_of_purchases=generator.choice([None, 0, 10, 2_147_483_647]),
                    last_visit=(m := generator.choice(MOMENTS)) and when(m),
                )
            )
    for model, rows in children.items():
        model.objects.bulk_create(rows)


def test_random_awkward_rows_are_written_to_the_same_bytes(db):
    batch = BatchFactory(time_zone=ZONE)
    ids = random_customers(batch, random.Random(20250301), 400)
    body, sent = compare(ids)
    assert leaves(sent) > 4000
    kinds = {key for customer in sent for key in customer}
    assert {"metadata", "metrics", "balance", "devices", "registration_date"} <= kinds
    assert b'"amount":999999999.999999' in body
    assert "Ñandú".encode() in body
