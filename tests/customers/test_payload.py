import datetime as dt
import inspect
import json
import uuid
from decimal import Decimal

import pytest
from django.db import connection

from customers.contract import MigrateRequestSerializer, request_checker
from customers.models import StagedBalance, StagedCustomer, StagedDevice, StagedMetric
from customers.payload import (
    batch_chunks,
    batch_dry_run_lines,
    batch_send_queryset,
    body_bytes,
    customer_payloads,
    customer_payloads_by_pk,
    customers_body,
    number_text,
    payloads_meanwhile,
)
from tests.customers.contract_example import EXAMPLE_BODY
from tests.factories import (
    BalanceFactory,
    BatchFactory,
    CustomerFactory,
    DeviceFactory,
    MetricFactory,
)

UTC = dt.UTC
# PostgreSQL writes the JSON in one query; elsewhere it takes one query per table.
PAYLOAD_QUERIES = 1 if connection.vendor == "postgresql" else 4
TIER = uuid.UUID("3c90c3cc-0d44-4b50-8888-8dd25736052a")


def stage_example(batch) -> StagedCustomer:
    """The CONTRACT.md example customer, staged row by row."""
    customer = CustomerFactory(
        batch=batch,
        legacy_id="legacy-000123",
        name="John Smith",
        email="jsmith@example.com",
        gender="MALE",
        dob=dt.datetime(1990, 4, 1, tzinfo=UTC),
        registration_date=dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC),
        status="ACTIVE",
        metadata={"source": "legacy-crm"},
        metrics_updated_at=dt.datetime(2025, 2, 21, 14, 5, 42, tzinfo=UTC),
    )
    MetricFactory(
        customer=customer,
        period="lifetime",
        period_from=dt.datetime(2019, 1, 1, tzinfo=UTC),
        period_to=dt.datetime(2025, 2, 21, 14, 5, 42, tzinfo=UTC),
        tier_id=TIER,
        last_visit=dt.datetime(2024, 12, 10, 20, 58, 1, tzinfo=UTC),
        spend_total=Decimal("50.20"),
        number_of_purchases=10,
    )
    BalanceFactory(
        customer=customer,
        reward_id=TIER,
        amount=Decimal("123.000000"),
        expiration_date=dt.datetime(2026, 11, 7, 5, 31, 56, tzinfo=UTC),
        brand_id="brand-1",
        channel_id="web",
        store_id="store-9",
        issued_at=dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC),
        funded_by="brand-1",
    )
    DeviceFactory(
        customer=customer,
        device_token="fcm:abc",
        platform="ios",
        model="iPhone15,2",
        os_version="17.1",
        expires_at=dt.datetime(2026, 1, 1, tzinfo=UTC),
        created_at=dt.datetime(2024, 1, 1, tzinfo=UTC),
    )
    return customer


def stage_customers(batch, count: int, *, children: bool = True, **fields) -> list[int]:
    """``count`` customers of ``batch`` (with a balance, a device and a metric each)."""
    customers = StagedCustomer.objects.bulk_create(
        [CustomerFactory.build(batch=batch, **fields) for _ in range(count)], batch_size=500
    )
    if children:
        StagedBalance.objects.bulk_create(
            [BalanceFactory.build(customer=c) for c in customers], batch_size=500
        )
        StagedDevice.objects.bulk_create(
            [DeviceFactory.build(customer=c) for c in customers], batch_size=500
        )
        StagedMetric.objects.bulk_create(
            [MetricFactory.build(customer=c) for c in customers], batch_size=500
        )
    return [c.pk for c in customers]


def test_contract_example_comes_back_field_by_field_from_staged_rows(batch):
    customer = stage_example(batch)
    body = json.loads(body_bytes(customer_payloads([customer.pk])))
    expected = EXAMPLE_BODY["customers"][0]
    sent = body["customers"][0]
    for key, value in expected.items():
        assert sent[key] == value, key
    assert sent.keys() == expected.keys()
    assert list(sent) == list(expected)
    assert body == EXAMPLE_BODY


def test_example_body_bytes_pass_the_strict_contract(batch):
    customer = stage_example(batch)
    body = json.loads(body_bytes(customer_payloads([customer.pk])))
    serializer = MigrateRequestSerializer(data=body, context={"strict": True})
    assert serializer.is_valid(), serializer.errors


def test_absent_values_are_left_out(batch):
    customer = CustomerFactory(
        batch=batch, name="", email="", status="", registration_date=None, metadata={}
    )
    DeviceFactory(customer=customer, platform="", model="", os_version="")
    BalanceFactory(customer=customer, amount=Decimal("1.5"))
    (payload,) = customer_payloads([customer.pk])
    assert payload == {
        "id": customer.legacy_id,
        "balance": [{"reward_id": payload["balance"][0]["reward_id"], "amount": Decimal("1.5")}],
        "devices": [{"device_token": customer.devices.get().device_token}],
    }
    assert b"null" not in body_bytes([payload])
    assert b'""' not in body_bytes([payload])


def test_metrics_are_left_out_without_rows_or_updated_at(batch):
    customer = CustomerFactory(batch=batch)
    (payload,) = customer_payloads([customer.pk])
    assert "metrics" not in payload


def test_metrics_updated_at_alone_gives_metrics_with_updated_at_only(batch):
    customer = CustomerFactory(batch=batch, metrics_updated_at=dt.datetime(2025, 1, 2, tzinfo=UTC))
    (payload,) = customer_payloads([customer.pk])
    assert payload["metrics"] == {"updated_at": "2025-01-02T00:00:00Z"}


def test_metric_periods_are_keyed_in_the_contracts_order(batch):
    customer = CustomerFactory(batch=batch, metrics_updated_at=dt.datetime(2025, 1, 2, tzinfo=UTC))
    for period in ("this_month", "lifetime", "last_year"):
        MetricFactory(customer=customer, period=period, spend_total=None, number_of_purchases=3)
    (payload,) = customer_payloads([customer.pk])
    assert list(payload["metrics"]) == ["lifetime", "last_year", "this_month", "updated_at"]
    assert payload["metrics"]["this_month"] == {"number_of_purchases": 3}


def test_balances_and_devices_keep_their_staging_order(batch):
    customer = CustomerFactory(batch=batch)
    amounts = [Decimal("3"), Decimal("1"), Decimal("2")]
    for amount in amounts:
        BalanceFactory(customer=customer, amount=amount)
    tokens = ["fcm:c", "fcm:a", "fcm:b"]
    for token in tokens:
        DeviceFactory(customer=customer, device_token=token)
    (payload,) = customer_payloads([customer.pk])
    assert [b["amount"] for b in payload["balance"]] == amounts
    assert [d["device_token"] for d in payload["devices"]] == tokens


def test_payloads_follow_the_order_of_the_ids_given(batch):
    ids = stage_customers(batch, 5, children=False)
    order = [ids[3], ids[0], ids[4], ids[0]]
    payloads = customer_payloads(order)
    by_pk = dict(StagedCustomer.objects.filter(pk__in=ids).values_list("pk", "legacy_id"))
    assert [p["id"] for p in payloads] == [by_pk[ids[3]], by_pk[ids[0]], by_pk[ids[4]]]
    assert list(customer_payloads_by_pk(order)) == [ids[3], ids[0], ids[4]]


@pytest.mark.parametrize("span", [3, 30])
def test_payloads_hold_only_the_customers_asked_for(batch, span):
    ids = stage_customers(batch, span)
    other = stage_customers(BatchFactory(), 2)
    wanted = [ids[0], ids[-1]]
    payloads = customer_payloads_by_pk(wanted)
    assert list(payloads) == wanted
    balances = dict(
        StagedBalance.objects.filter(customer_id__in=wanted).values_list("customer_id", "reward_id")
    )
    for pk in wanted:
        assert [b["reward_id"] for b in payloads[pk]["balance"]] == [str(balances[pk])]
    assert customer_payloads_by_pk([other[0], ids[1]]).keys() == {other[0], ids[1]}


def test_date_times_keep_fractions_of_a_second_only_when_present(batch):
    customer = CustomerFactory(
        batch=batch,
        registration_date=dt.datetime(2023, 11, 7, 5, 31, 56, 250000, tzinfo=UTC),
        dob=dt.datetime(1990, 4, 1, tzinfo=UTC),
    )
    (payload,) = customer_payloads([customer.pk])
    assert payload["registration_date"] == "2023-11-07T05:31:56.25Z"
    assert payload["dob"] == "1990-04-01T00:00:00Z"


def test_date_times_in_another_offset_are_written_in_utc(batch):
    bogota = dt.timezone(dt.timedelta(hours=-5))
    customer = CustomerFactory(
        batch=batch, registration_date=dt.datetime(2023, 11, 7, 0, 31, 56, tzinfo=bogota)
    )
    (payload,) = customer_payloads([customer.pk])
    assert payload["registration_date"] == "2023-11-07T05:31:56Z"


def test_reward_and_tier_ids_are_written_in_canonical_form(batch):
    customer = CustomerFactory(batch=batch)
    BalanceFactory(customer=customer, reward_id=TIER)
    MetricFactory(customer=customer, tier_id=TIER)
    (payload,) = customer_payloads([customer.pk])
    assert payload["balance"][0]["reward_id"] == str(TIER)
    assert payload["metrics"]["lifetime"]["tier_id"] == str(TIER)


def test_decimal_50_20_is_written_50_2_and_123_as_123(batch):
    customer = CustomerFactory(batch=batch)
    BalanceFactory(customer=customer, amount=Decimal("123.000000"))
    MetricFactory(customer=customer, spend_total=Decimal("50.20"))
    body = body_bytes(customer_payloads([customer.pk]))
    assert b'"amount":123}' in body
    assert b'"spend_total":50.2,' in body


def test_twenty_significant_digits_keep_every_digit_in_the_bytes():
    amount = Decimal("123456789012.12345678")
    body = body_bytes([{"id": "legacy-1", "balance": [{"amount": amount}]}])
    assert b'"amount":123456789012.12345678}' in body
    assert json.loads(body, parse_float=Decimal)["customers"][0]["balance"][0]["amount"] == amount


def test_amount_with_every_digit_staging_holds_comes_back_exactly(batch):
    customer = CustomerFactory(batch=batch)
    BalanceFactory(customer=customer, amount=Decimal("123456789.123456"))
    body = body_bytes(customer_payloads([customer.pk]))
    assert b'"amount":123456789.123456}' in body


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("50.20"), "50.2"),
        (Decimal("123.00000000"), "123"),
        (Decimal("-0.000"), "0"),
        (Decimal("1E+2"), "100"),
        (Decimal("1E-8"), "0.00000001"),
        (Decimal("-5.50"), "-5.5"),
    ],
)
def test_number_text_has_no_exponent_or_trailing_zeros(value, text):
    assert number_text(value) == text
    assert body_bytes([{"n": value}]) == b'{"customers":[{"n":%s}]}' % text.encode()


def test_body_is_compact_utf8_json():
    body = body_bytes([{"id": "legacy-1", "name": "José Núñez"}])
    assert body == '{"customers":[{"id":"legacy-1","name":"José Núñez"}]}'.encode()


def test_body_refuses_values_json_cannot_hold():
    with pytest.raises(TypeError):
        body_bytes([{"id": object()}])


def test_query_count_is_the_same_for_ten_and_a_thousand_customers(batch, django_assert_num_queries):
    few = stage_customers(batch, 10)
    many = stage_customers(batch, 1000)
    with django_assert_num_queries(PAYLOAD_QUERIES):
        assert len(customer_payloads(few)) == 10
    with django_assert_num_queries(PAYLOAD_QUERIES):
        payloads = customer_payloads(many)
    with django_assert_num_queries(PAYLOAD_QUERIES):
        assert customers_body(many) == body_bytes(payloads)
    assert len(payloads) == 1000
    assert all(len(p["balance"]) == len(p["devices"]) == 1 for p in payloads)
    assert all(set(p["metrics"]) == {"lifetime"} for p in payloads)


def test_no_ids_need_no_query(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert customer_payloads([]) == []


def test_send_queryset_holds_valid_customers_not_excluded_in_pk_order(batch):
    valid = stage_customers(batch, 3, children=False, is_valid=True)
    stage_customers(batch, 2, children=False, is_valid=False)
    stage_customers(batch, 2, children=False, is_valid=None)
    stage_customers(batch, 2, children=False, is_valid=True, is_excluded=True)
    stage_customers(BatchFactory(), 2, children=False, is_valid=True)
    assert list(batch_send_queryset(batch).values_list("pk", flat=True)) == sorted(valid)


def test_chunks_follow_pk_order_and_the_size_asked(batch):
    ids = stage_customers(batch, 7, children=False, is_valid=True)
    assert list(batch_chunks(batch=batch, chunk_size=3)) == [ids[0:3], ids[3:6], ids[6:7]]
    assert list(batch_chunks(batch=batch, chunk_size=7)) == [ids]


def test_chunk_size_defaults_to_the_setting_and_is_capped_at_1000(batch, settings):
    ids = stage_customers(batch, 1001, children=False, is_valid=True)
    settings.MIGRATION_CHUNK_SIZE = 400
    assert [len(c) for c in batch_chunks(batch=batch)] == [400, 400, 201]
    assert [len(c) for c in batch_chunks(batch=batch, chunk_size=5000)] == [1000, 1]
    assert sum(batch_chunks(batch=batch, chunk_size=5000), []) == ids
    with pytest.raises(ValueError, match="at least 1"):
        next(batch_chunks(batch=batch, chunk_size=0))


def test_dry_run_for_2500_customers_is_three_valid_request_bodies(batch, settings):
    settings.MIGRATION_CHUNK_SIZE = 1000
    ids = stage_customers(batch, 2500, is_valid=True)
    lines = list(batch_dry_run_lines(batch=batch))
    assert [line.count(b"\n") for line in lines] == [1, 1, 1]
    assert all(line.endswith(b"\n") for line in lines)
    bodies = [json.loads(line) for line in lines]
    assert [len(body["customers"]) for body in bodies] == [1000, 1000, 500]
    for body in bodies:
        serializer = MigrateRequestSerializer(data=body, context={"strict": True})
        assert serializer.is_valid(), serializer.errors
        assert request_checker(strict=True).check(body) == []
    legacy = dict(StagedCustomer.objects.filter(pk__in=ids).values_list("pk", "legacy_id"))
    sent = [c["id"] for body in bodies for c in body["customers"]]
    assert sent == [legacy[pk] for pk in ids]


def test_dry_run_builds_one_body_at_a_time(batch, django_assert_num_queries):
    stage_customers(batch, 5, is_valid=True)
    lines = batch_dry_run_lines(batch=batch, chunk_size=2)
    assert inspect.isgenerator(lines)
    # One query for the chunk's ids, the rest for its payloads: nothing read ahead.
    with django_assert_num_queries(1 + PAYLOAD_QUERIES):
        first = next(lines)
    assert len(json.loads(first)["customers"]) == 2


def test_payloads_written_meanwhile_are_the_payloads(batch):
    ids = stage_customers(batch, 6)
    later = ids[3:]
    expected = customer_payloads_by_pk(later)

    with payloads_meanwhile(later) as upcoming:
        busy = sum(range(10_000))  # Python's work, while the database writes
    assert busy == 49_995_000
    assert upcoming() == expected
    assert list(upcoming()) == later  # in the order asked
    # The connection is left as it was: the next query runs.
    assert StagedCustomer.objects.filter(pk__in=ids).count() == 6


def test_an_error_while_payloads_are_written_leaves_the_connection_usable(batch):
    ids = stage_customers(batch, 2)

    with pytest.raises(ZeroDivisionError), payloads_meanwhile(ids):
        _ = 1 / 0

    assert customer_payloads_by_pk(ids).keys() == set(ids)
    with payloads_meanwhile([]) as nothing:
        pass
    assert nothing() == {}
