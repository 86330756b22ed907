import copy
import datetime as dt
import json
import random
import uuid
from collections import OrderedDict
from decimal import Decimal
from types import MappingProxyType

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.validators import validate_email
from django.test import override_settings

from customers.contract import (
    CustomerSerializer,
    MigrateRequestSerializer,
    customer_checker,
    format_datetime,
    messages,
    parse_datetime_value,
    problems_from_errors,
    request_checker,
)
from customers.contract.messages import shown_value
from customers.contract.rules import is_plain_email
from customers.models import AMOUNT_DECIMALS
from tests.customers.contract_example import EXAMPLE_BODY

UTC = dt.UTC
TIER = uuid.UUID("3c90c3cc-0d44-4b50-8888-8dd25736052a")


def example_customer() -> dict:
    return copy.deepcopy(EXAMPLE_BODY["customers"][0])


def problems(customer: dict, *, strict: bool = True, time_zone: str = "UTC") -> dict:
    """``{path: [messages]}`` from CustomerSerializer, checked to match the fast checker."""
    context = {"strict": strict, "time_zone": time_zone}
    serializer = CustomerSerializer(data=customer, context=context)
    serializer.is_valid()
    found = problems_from_errors(serializer.errors)
    fast = customer_checker(strict=strict, time_zone=time_zone).check(customer)
    assert sorted(fast, key=repr) == sorted(found, key=repr)
    by_path: dict[str, list[str]] = {}
    for problem in found:
        by_path.setdefault(problem.field, []).append(problem.message)
    return by_path


def validated(customer: dict, *, strict: bool = False, time_zone: str = "UTC") -> dict:
    context = {"strict": strict, "time_zone": time_zone}
    serializer = CustomerSerializer(data=customer, context=context)
    assert serializer.is_valid(), serializer.errors
    fast, found = customer_checker(strict=strict, time_zone=time_zone).clean(customer)
    assert found == []
    assert fast == serializer.validated_data
    return serializer.validated_data


def test_contract_example_body_passes_in_strict_mode():
    serializer = MigrateRequestSerializer(data=EXAMPLE_BODY, context={"strict": True})
    assert serializer.is_valid(), serializer.errors
    assert request_checker(strict=True).check(EXAMPLE_BODY) == []


def test_validated_data_keeps_the_body_keys_with_values_ready_for_staging():
    data = validated(example_customer(), strict=True)
    assert data["id"] == "legacy-000123"
    assert data["registration_date"] == dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)
    assert data["registration_date"].utcoffset() == dt.timedelta(0)
    assert data["metadata"] == {"source": "legacy-crm"}
    lifetime = data["metrics"]["lifetime"]
    assert lifetime["from"] == dt.datetime(2019, 1, 1, tzinfo=UTC)
    assert lifetime["tier_id"] == TIER
    assert lifetime["spend_total"] == Decimal("50.2")
    assert isinstance(lifetime["spend_total"], Decimal)
    assert lifetime["number_of_purchases"] == 10
    assert data["metrics"]["updated_at"] == dt.datetime(2025, 2, 21, 14, 5, 42, tzinfo=UTC)
    assert data["balance"][0]["amount"] == Decimal("123")
    assert data["balance"][0]["reward_id"] == TIER
    assert data["devices"][0]["device_info"] == {
        "platform": "ios",
        "model": "iPhone15,2",
        "osVersion": "17.1",
    }


def test_missing_id_is_required():
    customer = example_customer()
    del customer["id"]
    assert problems(customer) == {"id": [str(messages.ERR_REQUIRED)]}


def test_name_email_and_registration_date_are_required_by_default():
    customer = example_customer()
    for name in ("name", "email", "registration_date"):
        del customer[name]
    assert problems(customer) == {
        "name": [str(messages.ERR_REQUIRED)],
        "email": [str(messages.ERR_REQUIRED)],
        "registration_date": [str(messages.ERR_REQUIRED)],
    }


@override_settings(MASIVO_REQUIRED_FIELDS=["country"])
def test_required_fields_come_from_settings():
    customer = example_customer()
    del customer["name"]
    assert problems(customer) == {"country": [str(messages.ERR_REQUIRED)]}
    customer["country"] = "CO"
    assert problems(customer) == {}


@override_settings(MASIVO_REQUIRED_FIELDS=["phone"])
def test_required_setting_naming_an_unknown_field_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured, match="phone"):
        CustomerSerializer(data=example_customer()).is_valid()


def test_invalid_email_is_refused():
    customer = example_customer()
    customer["email"] = "jsmith@@example"
    assert problems(customer) == {"email": [messages.ERR_EMAIL % {"value": "jsmith@@example"}]}


def test_gender_outside_the_list_is_refused():
    customer = example_customer()
    customer["gender"] = "UNKNOWN"
    message = messages.ERR_CHOICE % {"value": "UNKNOWN", "choices": "MALE, FEMALE, OTHER"}
    assert problems(customer) == {"gender": [message]}


@override_settings(MASIVO_GENDERS=["MALE"], MASIVO_STATUSES=["ACTIVE"])
def test_enum_lists_come_from_settings():
    customer = example_customer()
    customer["gender"] = "FEMALE"
    customer["status"] = "INACTIVE"
    assert problems(customer) == {
        "gender": [messages.ERR_CHOICE % {"value": "FEMALE", "choices": "MALE"}],
        "status": [messages.ERR_CHOICE % {"value": "INACTIVE", "choices": "ACTIVE"}],
    }


@override_settings(MASIVO_DEVICE_PLATFORMS=["ios", "android"])
def test_device_platform_outside_the_setting_is_refused():
    customer = example_customer()
    customer["devices"][0]["device_info"]["platform"] = "web"
    message = messages.ERR_CHOICE % {"value": "web", "choices": "ios, android"}
    assert problems(customer) == {"devices[0].device_info.platform": [message]}


def test_enum_case_is_exact_in_strict_mode_and_free_in_lenient_mode():
    customer = example_customer()
    customer["gender"] = "male"
    customer["devices"][0]["device_info"]["platform"] = "iOS"
    assert set(problems(customer)) == {"gender", "devices[0].device_info.platform"}
    data = validated(customer)
    assert data["gender"] == "MALE"
    assert data["devices"][0]["device_info"]["platform"] == "ios"


@pytest.mark.parametrize(
    "value",
    ["2023-11-07T00:31:56-05:00", "2023-11-07T05:31:56", "2023-11-07", "2023-11-07 05:31:56Z"],
)
def test_strict_date_times_must_be_utc_with_z(value):
    customer = example_customer()
    customer["registration_date"] = value
    assert problems(customer) == {
        "registration_date": [messages.ERR_DATETIME_UTC % {"value": value}]
    }


def test_strict_date_times_accept_fractional_seconds():
    customer = example_customer()
    customer["registration_date"] = "2023-11-07T05:31:56.250Z"
    data = validated(customer, strict=True)
    assert data["registration_date"] == dt.datetime(2023, 11, 7, 5, 31, 56, 250000, tzinfo=UTC)


def test_impossible_date_is_refused():
    customer = example_customer()
    customer["registration_date"] = "2023-02-30T05:31:56Z"
    assert problems(customer) == {
        "registration_date": [messages.ERR_DATETIME_UTC % {"value": "2023-02-30T05:31:56Z"}]
    }


def test_lenient_date_times_convert_offsets_to_utc():
    customer = example_customer()
    customer["registration_date"] = "2023-11-07T00:31:56-05:00"
    data = validated(customer)
    assert data["registration_date"] == dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)


def test_lenient_date_time_without_offset_is_read_in_the_batch_time_zone():
    customer = example_customer()
    customer["registration_date"] = "2023-11-07 00:31:56"
    data = validated(customer, time_zone="America/Bogota")
    assert data["registration_date"] == dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)


def test_lenient_plain_date_is_midnight_utc():
    customer = example_customer()
    customer["balance"][0]["expiration_date"] = "2026-11-07"
    data = validated(customer, time_zone="America/Bogota")
    assert data["balance"][0]["expiration_date"] == dt.datetime(2026, 11, 7, tzinfo=UTC)


def test_lenient_unreadable_date_time_is_refused():
    customer = example_customer()
    customer["registration_date"] = "07/11/2023"
    assert problems(customer, strict=False) == {
        "registration_date": [messages.ERR_DATETIME % {"value": "07/11/2023"}]
    }


def test_dob_must_be_midnight_utc_in_strict_mode():
    customer = example_customer()
    customer["dob"] = "1990-04-01T05:00:00Z"
    assert problems(customer) == {
        "dob": [messages.ERR_DOB_MIDNIGHT % {"value": "1990-04-01T05:00:00Z"}]
    }


def test_lenient_dob_keeps_the_calendar_date_as_written():
    customer = example_customer()
    customer["dob"] = "1990-04-01T23:00:00-05:00"
    data = validated(customer, time_zone="Asia/Tokyo")
    assert data["dob"] == dt.datetime(1990, 4, 1, tzinfo=UTC)


@pytest.mark.parametrize("value", [["legacy-crm"], "legacy-crm", 7])
def test_metadata_must_be_an_object(value):
    customer = example_customer()
    customer["metadata"] = value
    assert problems(customer) == {"metadata": [str(messages.ERR_METADATA)]}


def test_lenient_metadata_may_be_json_text_of_an_object():
    customer = example_customer()
    customer["metadata"] = '{"source": "legacy-crm"}'
    assert validated(customer)["metadata"] == {"source": "legacy-crm"}
    customer["metadata"] = '["legacy-crm"]'
    assert problems(customer, strict=False) == {"metadata": [str(messages.ERR_METADATA)]}


def test_reward_id_and_tier_id_must_be_uuids():
    customer = example_customer()
    customer["balance"][0]["reward_id"] = "reward-1"
    customer["metrics"]["lifetime"]["tier_id"] = "gold"
    assert problems(customer) == {
        "balance[0].reward_id": [messages.ERR_UUID % {"value": "reward-1"}],
        "metrics.lifetime.tier_id": [messages.ERR_UUID % {"value": "gold"}],
    }


def test_strict_uuid_must_have_the_canonical_form():
    customer = example_customer()
    customer["balance"][0]["reward_id"] = TIER.hex
    assert problems(customer) == {"balance[0].reward_id": [messages.ERR_UUID % {"value": TIER.hex}]}
    assert validated(customer)["balance"][0]["reward_id"] == TIER


@pytest.mark.parametrize("value", ["123", True, None, "", [123]])
def test_strict_amount_must_be_a_json_number(value):
    customer = example_customer()
    customer["balance"][0]["amount"] = value
    expected = messages.ERR_EMPTY if value in (None, "") else messages.ERR_NUMBER_TYPE
    assert problems(customer) == {"balance[0].amount": [str(expected)]}


def test_lenient_amount_may_be_text_but_not_a_boolean():
    customer = example_customer()
    customer["balance"][0]["amount"] = " 50.20 "
    customer["metrics"]["lifetime"]["spend_total"] = "1e3"
    data = validated(customer)
    assert data["balance"][0]["amount"] == Decimal("50.2")
    assert data["metrics"]["lifetime"]["spend_total"] == Decimal("1000")
    customer["balance"][0]["amount"] = True
    customer["metrics"]["lifetime"]["spend_total"] = "fifty"
    assert problems(customer, strict=False) == {
        "balance[0].amount": [messages.ERR_NUMBER % {"value": "true"}],
        "metrics.lifetime.spend_total": [messages.ERR_NUMBER % {"value": "fifty"}],
    }


@pytest.mark.parametrize(
    "value",
    [
        Decimal("9" * (messages.INTEGER_DIGITS + 1)),
        Decimal("0." + "1" * (AMOUNT_DECIMALS + 1)),
    ],
)
def test_amount_the_staging_columns_would_round_is_refused(value):
    customer = example_customer()
    customer["balance"][0]["amount"] = value
    message = messages.ERR_NUMBER_DIGITS % {
        "value": str(value),
        "integer": messages.INTEGER_DIGITS,
        "decimals": AMOUNT_DECIMALS,
    }
    assert problems(customer) == {"balance[0].amount": [message]}


def test_amount_with_every_digit_the_columns_hold_keeps_them_all():
    amount = Decimal("9" * messages.INTEGER_DIGITS + "." + "1" * AMOUNT_DECIMALS)
    customer = example_customer()
    customer["balance"][0]["amount"] = amount
    customer["metrics"]["lifetime"]["spend_total"] = float("0." + "1" * AMOUNT_DECIMALS)
    data = validated(customer, strict=True)
    assert data["balance"][0]["amount"] == amount
    assert data["metrics"]["lifetime"]["spend_total"] == Decimal("0." + "1" * AMOUNT_DECIMALS)


def test_trailing_zeros_beyond_the_decimals_are_not_digits():
    customer = example_customer()
    customer["balance"][0]["amount"] = Decimal("50.2" + "0" * (AMOUNT_DECIMALS + 3))
    assert validated(customer, strict=True)["balance"][0]["amount"] == Decimal("50.2")


def test_infinite_amount_is_refused():
    customer = example_customer()
    customer["balance"][0]["amount"] = float("inf")
    assert problems(customer) == {"balance[0].amount": [messages.ERR_NUMBER % {"value": "inf"}]}


@pytest.mark.parametrize("value", [-1, 1.5, 10.0, "10", True])
def test_number_of_purchases_must_be_a_whole_number_from_zero(value):
    customer = example_customer()
    customer["metrics"]["lifetime"]["number_of_purchases"] = value
    shown = json.dumps(value) if not isinstance(value, str) else value
    assert problems(customer) == {
        "metrics.lifetime.number_of_purchases": [messages.ERR_COUNT % {"value": shown}]
    }


def test_number_of_purchases_has_an_upper_bound():
    customer = example_customer()
    customer["metrics"]["lifetime"]["number_of_purchases"] = 2**31
    message = messages.ERR_COUNT_MAX % {"value": str(2**31), "max": messages.MAX_COUNT}
    assert problems(customer) == {"metrics.lifetime.number_of_purchases": [message]}


def test_lenient_number_of_purchases_may_be_whole_text():
    customer = example_customer()
    customer["metrics"]["lifetime"]["number_of_purchases"] = " 10 "
    assert validated(customer)["metrics"]["lifetime"]["number_of_purchases"] == 10


@pytest.mark.parametrize("value", [None, "", "   "])
def test_strict_mode_refuses_null_and_empty_values(value):
    customer = example_customer()
    customer["country"] = value
    customer["devices"][0]["device_info"]["model"] = value
    assert problems(customer) == {
        "country": [str(messages.ERR_EMPTY)],
        "devices[0].device_info.model": [str(messages.ERR_EMPTY)],
    }


@pytest.mark.parametrize("value", [None, "", "   "])
def test_lenient_mode_treats_null_and_empty_values_as_absent(value):
    customer = example_customer()
    customer["country"] = value
    customer["metrics"]["lifetime"]["tier_id"] = value
    data = validated(customer)
    assert "country" not in data
    assert "tier_id" not in data["metrics"]["lifetime"]
    customer["name"] = value
    assert problems(customer, strict=False) == {"name": [str(messages.ERR_REQUIRED)]}


def test_strict_null_in_a_required_field_says_empty_not_missing():
    customer = example_customer()
    customer["id"] = None
    assert problems(customer) == {"id": [str(messages.ERR_EMPTY)]}


def test_unknown_fields_are_refused_at_every_level():
    customer = example_customer()
    customer["phone"] = "+57 300"
    customer["metrics"]["weekly"] = {}
    customer["metrics"]["lifetime"]["visits"] = 3
    customer["balance"][0]["currency"] = "COP"
    customer["devices"][0]["device_info"]["os_version"] = "17"
    assert problems(customer) == {
        "phone": [messages.ERR_UNKNOWN_FIELD % {"field": "phone"}],
        "metrics.weekly": [messages.ERR_UNKNOWN_FIELD % {"field": "weekly"}],
        "metrics.lifetime.visits": [messages.ERR_UNKNOWN_FIELD % {"field": "visits"}],
        "balance[0].currency": [messages.ERR_UNKNOWN_FIELD % {"field": "currency"}],
        "devices[0].device_info.os_version": [messages.ERR_UNKNOWN_FIELD % {"field": "os_version"}],
    }


def test_every_metrics_period_is_accepted():
    customer = example_customer()
    period = customer["metrics"].pop("lifetime")
    for name in messages.PERIODS:
        customer["metrics"][name] = dict(period)
    data = validated(customer, strict=True)
    assert set(data["metrics"]) == {*messages.PERIODS, "updated_at"}


def test_id_must_be_text_in_strict_mode_and_may_be_a_number_in_lenient_mode():
    customer = example_customer()
    customer["id"] = 123
    assert problems(customer) == {"id": [str(messages.ERR_TEXT)]}
    assert validated(customer)["id"] == "123"


def test_text_longer_than_its_staging_column_is_refused():
    customer = example_customer()
    customer["country"] = "C" * 65
    message = messages.ERR_TEXT_TOO_LONG % {"max": 64, "length": 65}
    assert problems(customer) == {"country": [message]}


def test_balance_must_be_a_list_of_objects():
    customer = example_customer()
    customer["balance"] = {"reward_id": str(TIER), "amount": 1}
    customer["devices"] = ["fcm:abc"]
    assert problems(customer) == {
        "balance": [str(messages.ERR_NOT_LIST)],
        "devices[0]": [str(messages.ERR_NOT_OBJECT)],
    }


def test_balance_entry_needs_reward_id_and_amount_and_device_needs_a_token():
    customer = example_customer()
    customer["balance"] = [{"brand_id": "brand-1"}]
    customer["devices"] = [{"device_info": {"platform": "ios"}}]
    assert problems(customer) == {
        "balance[0].reward_id": [str(messages.ERR_REQUIRED)],
        "balance[0].amount": [str(messages.ERR_REQUIRED)],
        "devices[0].device_token": [str(messages.ERR_REQUIRED)],
    }


def test_customer_must_be_an_object():
    assert problems(["legacy-000123"]) == {"": [str(messages.ERR_NOT_OBJECT)]}


def request_problems(body, *, strict: bool = True) -> dict:
    serializer = MigrateRequestSerializer(data=body, context={"strict": strict})
    serializer.is_valid()
    found = problems_from_errors(serializer.errors)
    assert sorted(request_checker(strict=strict).check(body), key=repr) == sorted(found, key=repr)
    by_path: dict[str, list[str]] = {}
    for problem in found:
        by_path.setdefault(problem.field, []).append(problem.message)
    return by_path


def test_request_needs_one_to_one_thousand_customers():
    assert request_problems({"customers": []}) == {
        "customers": [messages.ERR_TOO_FEW % {"min": 1, "count": 0}]
    }
    many = []
    for index in range(1001):
        customer = example_customer()
        customer["id"] = f"legacy-{index}"
        customer["email"] = f"c{index}@example.com"
        many.append(customer)
    assert request_problems({"customers": many}) == {
        "customers": [messages.ERR_TOO_MANY % {"max": 1000, "count": 1001}]
    }
    assert request_problems({"customers": many[:1000]}) == {}


def test_request_envelope_refuses_unknown_keys_and_a_missing_list():
    assert request_problems({"customer": [example_customer()]}) == {
        "customer": [messages.ERR_UNKNOWN_FIELD % {"field": "customer"}],
        "customers": [str(messages.ERR_REQUIRED)],
    }
    assert request_problems([example_customer()]) == {"": [str(messages.ERR_NOT_OBJECT)]}


def test_duplicate_ids_in_one_request_are_refused():
    first, second = example_customer(), example_customer()
    second["email"] = "other@example.com"
    message = messages.ERR_DUPLICATE_ID % {"value": "legacy-000123"}
    assert request_problems({"customers": [first, second]}) == {
        "customers[0].id": [message],
        "customers[1].id": [message],
    }


def test_duplicate_email_case_variants_in_one_strict_request_are_refused():
    first, second = example_customer(), example_customer()
    second["id"] = "legacy-000124"
    second["email"] = "JSmith@Example.com"
    assert request_problems({"customers": [first, second]}) == {
        "customers[0].email": [messages.ERR_DUPLICATE_EMAIL % {"value": "jsmith@example.com"}],
        "customers[1].email": [messages.ERR_DUPLICATE_EMAIL % {"value": "JSmith@Example.com"}],
    }
    # The nested import leaves repeated emails to batch validation.
    assert request_problems({"customers": [first, second]}, strict=False) == {}


def test_duplicate_problems_carry_their_own_codes():
    first, second = example_customer(), example_customer()
    serializer = MigrateRequestSerializer(
        data={"customers": [first, second]}, context={"strict": True}
    )
    assert not serializer.is_valid()
    codes = {(p.field, p.code) for p in problems_from_errors(serializer.errors)}
    assert codes == {
        ("customers[0].id", "duplicate_id"),
        ("customers[1].id", "duplicate_id"),
        ("customers[0].email", "duplicate_email"),
        ("customers[1].email", "duplicate_email"),
    }


def test_missing_value_has_the_required_code_and_others_the_invalid_code():
    customer = example_customer()
    del customer["name"]
    customer["email"] = "nobody"
    found = {p.field: p.code for p in customer_checker().check(customer)}
    assert found == {"name": "required", "email": "invalid"}


@override_settings(MASIVO_GENDERS=["MALE"])
def test_checker_reads_settings_when_it_is_built():
    checker = customer_checker()
    customer = example_customer()
    customer["gender"] = "FEMALE"
    with override_settings(MASIVO_GENDERS=["MALE", "FEMALE"]):
        assert checker.check(customer) != []
        assert customer_checker().check(customer) == []


def test_format_datetime_writes_utc_with_z_and_microseconds_only_when_present():
    bogota = dt.timezone(dt.timedelta(hours=-5))
    assert format_datetime(dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)) == (
        "2023-11-07T05:31:56Z"
    )
    assert format_datetime(dt.datetime(2023, 11, 7, 0, 31, 56, 120000, tzinfo=bogota)) == (
        "2023-11-07T05:31:56.120000Z"
    )
    with pytest.raises(ValueError, match="time zone"):
        format_datetime(dt.datetime(2023, 11, 7))  # noqa: DTZ001


def test_parse_datetime_value_raises_a_value_error_for_import_widgets():
    assert parse_datetime_value("2023-11-07T05:31:56+00:00") == dt.datetime(
        2023, 11, 7, 5, 31, 56, tzinfo=UTC
    )
    assert parse_datetime_value(dt.date(2023, 11, 7)) == dt.datetime(2023, 11, 7, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a date-time"):
        parse_datetime_value("yesterday")


def test_rule_fields_write_values_the_contracts_way():
    fields = CustomerSerializer().fields
    moment = dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)
    assert fields["registration_date"].to_representation(moment) == "2023-11-07T05:31:56Z"
    assert fields["balance"].child.fields["reward_id"].to_representation(TIER) == str(TIER)
    assert fields["name"].to_representation("John Smith") == "John Smith"


# --- The compiled checker's quick paths keep the rules' answers ------------------------------
def test_whole_amount_with_more_integer_digits_than_the_columns_hold_is_refused():
    customer = example_customer()
    customer["balance"][0]["amount"] = 10**messages.INTEGER_DIGITS - 1
    assert validated(customer, strict=True)["balance"][0]["amount"] == Decimal(
        10**messages.INTEGER_DIGITS - 1
    )
    customer["balance"][0]["amount"] = -(10**messages.INTEGER_DIGITS)
    message = messages.ERR_NUMBER_DIGITS % {
        "value": str(-(10**messages.INTEGER_DIGITS)),
        "integer": messages.INTEGER_DIGITS,
        "decimals": AMOUNT_DECIMALS,
    }
    assert problems(customer) == {"balance[0].amount": [message]}


def test_amount_written_with_more_than_64_digits_is_refused_even_when_they_are_zeros():
    value = Decimal("1." + "0" * 70)
    customer = example_customer()
    customer["balance"][0]["amount"] = value
    message = messages.ERR_NUMBER_DIGITS % {
        "value": shown_value(value),
        "integer": messages.INTEGER_DIGITS,
        "decimals": AMOUNT_DECIMALS,
    }
    assert problems(customer) == {"balance[0].amount": [message]}


def test_strict_uuid_may_be_upper_case_but_not_braced_or_a_urn():
    customer = example_customer()
    customer["balance"][0]["reward_id"] = str(TIER).upper()
    assert validated(customer, strict=True)["balance"][0]["reward_id"] == TIER
    for value in (f"{{{TIER}}}", f"urn:uuid:{TIER}"):
        customer["balance"][0]["reward_id"] = value
        assert problems(customer) == {
            "balance[0].reward_id": [messages.ERR_UUID % {"value": value}]
        }


def test_strict_mode_keeps_spaces_around_text_and_refuses_them_around_dates_and_uuids():
    customer = example_customer()
    customer["name"] = " John Smith "
    assert validated(customer, strict=True)["name"] == " John Smith "
    customer["registration_date"] = " 2023-11-07T05:31:56Z"
    customer["metrics"]["lifetime"]["tier_id"] = f"{TIER} "
    assert problems(customer) == {
        "registration_date": [messages.ERR_DATETIME_UTC % {"value": " 2023-11-07T05:31:56Z"}],
        "metrics.lifetime.tier_id": [messages.ERR_UUID % {"value": f"{TIER} "}],
    }


@pytest.mark.parametrize("value", ["\u3000", "\t\n", "\u00a0"])
def test_any_unicode_blank_is_an_empty_value(value):
    customer = example_customer()
    customer["country"] = value
    customer["metrics"]["lifetime"]["tier_id"] = value
    assert problems(customer) == {
        "country": [str(messages.ERR_EMPTY)],
        "metrics.lifetime.tier_id": [str(messages.ERR_EMPTY)],
    }
    assert "country" not in validated(customer)


@override_settings(MASIVO_GENDERS=["MALE", " "])
def test_blank_choice_in_the_setting_is_still_an_empty_value():
    customer = example_customer()
    customer["gender"] = " "
    assert problems(customer) == {"gender": [str(messages.ERR_EMPTY)]}


@pytest.mark.parametrize(
    ("value", "is_valid"),
    [
        ("o'brien@example.com", True),
        ("user@localhost", True),
        ("user@[127.0.0.1]", True),
        ("user@-example.com", False),
        ("a..b@example.com", False),
        ("user@example", False),
    ],
)
def test_addresses_the_quick_pattern_leaves_out_are_checked_by_django(value, is_valid):
    customer = example_customer()
    customer["email"] = value
    expected = {} if is_valid else {"email": [messages.ERR_EMAIL % {"value": value}]}
    assert problems(customer) == expected


def address_like(generator: random.Random) -> str:
    """An address made of mostly valid pieces; now and then a character, an empty piece or
    a label length that breaks one of the quick pattern's rules."""

    def piece(valid: str, tricky: str, longest: int) -> str:
        size = generator.randint(0 if generator.random() < 0.1 else 1, longest)
        return "".join(
            generator.choice(tricky if generator.random() < 0.04 else valid) for _ in range(size)
        )

    local = ".".join(piece("ab9XZ_+-", "'ñ .@", 5) for _ in range(generator.randint(1, 3)))
    labels = [piece("ab9Z-", "ñ_ .", 6) for _ in range(generator.randint(1, 3))]
    if generator.random() < 0.05:
        labels[0] = "a" * generator.choice([63, 64])
    tld = piece("abZ", "9-ñ", 4)
    return f"{local}@{'.'.join([*labels, tld])}"


def test_quick_email_pattern_accepts_only_addresses_django_accepts():
    generator = random.Random(7)
    accepted = 0
    for _ in range(20_000):
        value = address_like(generator)
        if is_plain_email(value):
            validate_email(value)
            accepted += 1
    # Random text almost never looks like an address: the sample must hold many that the
    # quick pattern accepts (and many it leaves to Django), or it checks nothing.
    assert 2_000 < accepted < 18_000


def test_strict_problems_come_in_key_order_then_missing_then_unknown_and_empty_keys():
    customer = {
        "name": "John",
        "phone": "1",
        "email": "nobody",
        "country": "",
        "gender": "NOPE",
        "metrics": {"lifetime": {"tier_id": "gold", "visits": 1}},
    }
    found = [problem.field for problem in customer_checker().check(customer)]
    assert found == [
        "email",
        "gender",
        "metrics.lifetime.tier_id",
        "metrics.lifetime.visits",
        "id",
        "registration_date",
        "phone",
        "country",
    ]


def test_customer_given_as_another_mapping_is_checked_like_a_dict():
    customer = example_customer()
    checker = customer_checker()
    assert checker.clean(OrderedDict(customer)) == checker.clean(customer)
    del customer["id"]
    assert checker.check(MappingProxyType(customer)) == checker.check(customer) != []
