"""The contract's two implementations, the DRF serializers (the reference) and the compiled
checker, give the same problems (code, path, message, and the message kept untranslated)
and the same cleaned values over awkward customers and bodies, valid and invalid, in both
modes. Each test counts what it compared and looks for known awkward values, so it fails
if either side returns nothing.
"""

import contextlib
import copy
import datetime as dt
import json
import random
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import pytest

from customers.contract import (
    CustomerSerializer,
    MigrateRequestSerializer,
    customer_checker,
    messages,
    request_checker,
    serializer_problems,
)

ZONE = "America/Bogota"  # a batch's time zone: UTC-05:00, no daylight saving
TIER = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
REWARD = "0f1e2d3c-4b5a-4968-8776-655443322110"
NAME = "José Ñúñez-Ålvarez 😀"
PROBLEM = tuple[str, str, str, str]


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


# --- Both implementations, one call ------------------------------------------------------------
def canonical(value: Any) -> Any:
    """A value with every type and digit kept (``Decimal("50.20")`` is not ``50.2``)."""
    if isinstance(value, Mapping):
        return ("dict", tuple(sorted((str(k), canonical(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("list", tuple(canonical(item) for item in value))
    return (type(value).__name__, repr(value))


def as_tuple(problem: messages.FieldProblem) -> PROBLEM:
    return problem.field, problem.code, problem.message, repr(problem.untranslated)


class Twins:
    """Runs data through the serializer and its compiled checker, asserts they agree, and
    keeps count of what was compared."""

    def __init__(self, serializer_class, make_checker: Callable):
        self.serializer_class = serializer_class
        self.checkers = {
            strict: make_checker(strict=strict, time_zone=ZONE) for strict in (True, False)
        }
        self.valid = 0
        self.problems: list[PROBLEM] = []

    def compare(self, data: Any, *, strict: bool) -> tuple[Any, list[PROBLEM]]:
        """The serializer's value and problems, once asserted to be the checker's too."""
        context = {"strict": strict, "time_zone": ZONE}
        serializer = self.serializer_class(data=copy.deepcopy(data), context=context)
        is_valid = serializer.is_valid()
        value = serializer.validated_data if is_valid else None
        found = [as_tuple(p) for p in serializer_problems(serializer)]
        checker = self.checkers[strict]
        fast_value, fast_found = checker.clean(copy.deepcopy(data))
        fast_found = [as_tuple(p) for p in fast_found]
        assert sorted(fast_found) == sorted(found)
        assert [as_tuple(p) for p in checker.check(copy.deepcopy(data))] == fast_found
        assert canonical(fast_value) == canonical(value)
        assert bool(value) == is_valid != bool(found)
        self.problems.extend(found)
        self.valid += is_valid
        return value, found


@pytest.fixture
def customers() -> Twins:
    return Twins(CustomerSerializer, customer_checker)


@pytest.fixture
def bodies() -> Twins:
    return Twins(MigrateRequestSerializer, request_checker)


# --- Awkward data -----------------------------------------------------------------------------
FULL_STRICT = """{
  "id": "000123", "name": "José Ñúñez-Ålvarez 😀", "email": "jose.nunez+senal@example.com",
  "gender": "MALE", "dob": "1990-04-01T00:00:00Z", "registration_date": "2023-11-07T05:31:56Z",
  "status": "ACTIVE", "document_type": "Cédula", "document_number": "0001234567",
  "country": "Perú",
  "metadata": {"origen": "CRM légado", "niveles": {"ñ": [1, {"ü": "ß", "vacío": {}}],
               "señal": null, "sí": true}, "emoji": "😀"},
  "metrics": {
    "lifetime": {"from": "2019-01-01T00:00:00Z", "to": "2025-02-21T14:05:42.250000Z",
                 "tier_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
                 "last_visit": "2024-12-10T20:58:01Z", "spend_total": 50.20,
                 "number_of_purchases": 10},
    "this_year": {"spend_total": 0.000001, "number_of_purchases": 0},
    "last_month": {"spend_total": 123.000000, "last_session": "2025-01-31T23:59:59Z"},
    "updated_at": "2025-02-21T14:05:42Z"},
  "balance": [
    {"reward_id": "0f1e2d3c-4b5a-4968-8776-655443322110", "amount": 999999999.999999,
     "brand_id": "0042"},
    {"reward_id": "3C90C3CC-0D44-4B50-8888-8DD25736052A", "amount": 123,
     "funded_by": "Ñandú S.A."},
    {"reward_id": "0f1e2d3c-4b5a-4968-8776-655443322110", "amount": 50.2,
     "expiration_date": "2026-11-07T05:31:56Z"},
    {"reward_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "amount": -0.000001,
     "store_id": "tienda-ü"}],
  "devices": [
    {"device_token": "fcm:ñ-001", "device_info": {"platform": "ios", "model": "iPhone15,2"}},
    {"device_token": "apns:0007", "created_at": "2024-01-01T00:00:00Z"},
    {"device_token": "web:ç", "device_info": {"osVersion": "17.1"}}]
}"""


def full_strict() -> dict:
    """Every field and every kind of child, as the console sends them: numbers read as
    Decimal (as the sandbox and validation read bodies), one as a float, one as an int."""
    full = json.loads(FULL_STRICT, parse_float=Decimal)
    full["balance"][2]["amount"] = 50.2
    return full


def minimal(legacy_id: str = "0000", **fields) -> dict:
    customer = {"id": legacy_id, "name": "Zoë", "registration_date": "2023-11-07T05:31:56Z"}
    return {**customer, "email": f"zoe{legacy_id}@example.com", **fields}


def strict_customers() -> list[dict]:
    """The full customer, and customers with each kind of child alone, and with none."""
    full = full_strict()
    return [
        full,
        minimal(),
        minimal("0001", balance=full["balance"][:1]),
        minimal("0002", devices=full["devices"][1:2]),
        minimal("0003", metrics={"updated_at": "2025-02-21T14:05:42Z"}),
        minimal("0004", metrics={"this_quarter": {}, "last_semester": {"number_of_purchases": 3}}),
        minimal("0005", metadata={}, balance=[], devices=[]),
    ]


def lenient_customers() -> list[dict]:
    """As read from files in a batch's time zone: date-times with and without offsets,
    dates, numbers as text with trailing zeros, any case, and empty optional values."""
    full = full_strict()
    full.update(
        id=" 000123 ",
        gender="male",
        status=" active ",
        dob="1990-04-01T23:30:00-05:00",
        registration_date="2023-11-07 00:31:56",
        document_type="",
        document_number=None,
        country="\u00a0",
        metadata='{"origen": "CRM légado", "niveles": {"ñ": [1, {"ü": "ß"}]}}',
    )
    full["metrics"]["lifetime"].update(
        {"from": "2019-01-01", "to": "2025-02-21T14:05:42+01:00", "spend_total": "50.20"}
    )
    full["metrics"]["lifetime"]["number_of_purchases"] = "10.0"
    full["metrics"]["this_year"]["spend_total"] = " 0.000001 "
    full["balance"][0]["amount"] = "999999999.999999"
    full["balance"][1].update(amount="123.000000", reward_id=f"{{{TIER}}}")
    full["balance"][2]["expiration_date"] = "2026-11-07T00:31:56"
    full["devices"][0]["device_info"]["platform"] = "IOS"
    return [
        full,
        minimal("0006", registration_date="2023-11-07T00:31:56-05:00", email=" ZOE@Example.com "),
        minimal("0007", registration_date="2023-11-07", balance=[], metrics=None, devices=""),
        minimal("0008", dob="1990-04-01", balance=[{"reward_id": REWARD, "amount": 7}]),
    ]


# --- Each rule broken, in the mode where it applies -------------------------------------------
def changed(path: str, value: Any) -> Callable[[dict], None]:
    """Sets (or, for ``DELETE``, removes) the value at a path like ``balance.0.amount``."""

    def change(customer: dict) -> None:
        *parents, last = path.split(".")
        target: Any = customer
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key: Any = int(last) if isinstance(target, list) else last
        if value is DELETE:
            del target[key]
        else:
            target[key] = value

    return change


DELETE = object()
STRICT, LENIENT = True, False
# (mode, change, the message constant it must produce)
BROKEN: list[tuple[bool, Callable[[dict], None], Any]] = [
    (STRICT, changed("id", DELETE), messages.ERR_REQUIRED),
    (STRICT, changed("balance.0.amount", DELETE), messages.ERR_REQUIRED),
    (STRICT, changed("devices.1.device_token", DELETE), messages.ERR_REQUIRED),
    (STRICT, changed("name", "é" * 256), messages.ERR_TEXT_TOO_LONG),
    (STRICT, changed("email", "ñ" * 250 + "@x.co"), messages.ERR_TEXT_TOO_LONG),
    (STRICT, changed("id", 123), messages.ERR_TEXT),
    (LENIENT, changed("country", ["Perú"]), messages.ERR_TEXT),
    (STRICT, changed("email", "josé@"), messages.ERR_EMAIL),
    (LENIENT, changed("email", "a..b@example.com"), messages.ERR_EMAIL),
    (STRICT, changed("registration_date", "2023-11-07T00:31:56-05:00"), messages.ERR_DATETIME_UTC),
    (STRICT, changed("metrics.lifetime.from", "2019-01-01"), messages.ERR_DATETIME_UTC),
    (STRICT, changed("balance.0.issued_at", "2023-02-30T00:00:00Z"), messages.ERR_DATETIME_UTC),
    (LENIENT, changed("registration_date", "07/11/2023"), messages.ERR_DATETIME),
    (LENIENT, changed("devices.1.created_at", "2023-02-30"), messages.ERR_DATETIME),
    (STRICT, changed("dob", "1990-04-01T05:00:00Z"), messages.ERR_DOB_MIDNIGHT),
    (STRICT, changed("gender", "male"), messages.ERR_CHOICE),
    (LENIENT, changed("status", "ACTIVO"), messages.ERR_CHOICE),
    (STRICT, changed("devices.0.device_info.platform", "IOS"), messages.ERR_CHOICE),
    (STRICT, changed("balance.0.reward_id", f"{{{REWARD}}}"), messages.ERR_UUID),
    (LENIENT, changed("metrics.lifetime.tier_id", "oro"), messages.ERR_UUID),
    (STRICT, changed("balance.0.amount", "50.20"), messages.ERR_NUMBER_TYPE),
    (STRICT, changed("balance.1.amount", True), messages.ERR_NUMBER_TYPE),
    (STRICT, changed("balance.0.amount", Decimal("0.0000001")), messages.ERR_NUMBER_DIGITS),
    (STRICT, changed("balance.0.amount", Decimal("1000000000.000000")), messages.ERR_NUMBER_DIGITS),
    (LENIENT, changed("metrics.this_year.spend_total", "0.0000005"), messages.ERR_NUMBER_DIGITS),
    (STRICT, changed("balance.0.amount", Decimal("NaN")), messages.ERR_NUMBER),
    (LENIENT, changed("balance.0.amount", "12,5"), messages.ERR_NUMBER),
    (LENIENT, changed("balance.0.amount", "Infinity"), messages.ERR_NUMBER),
    (STRICT, changed("metrics.lifetime.number_of_purchases", -1), messages.ERR_COUNT),
    (STRICT, changed("metrics.lifetime.number_of_purchases", "10"), messages.ERR_COUNT),
    (LENIENT, changed("metrics.lifetime.number_of_purchases", "1.5"), messages.ERR_COUNT),
    (STRICT, changed("metrics.lifetime.number_of_purchases", 2**31), messages.ERR_COUNT_MAX),
    (STRICT, changed("metadata", ["a"]), messages.ERR_METADATA),
    (STRICT, changed("metadata", '{"a": 1}'), messages.ERR_METADATA),
    (LENIENT, changed("metadata", "[1, 2]"), messages.ERR_METADATA),
    (STRICT, changed("country", ""), messages.ERR_EMPTY),
    (STRICT, changed("document_type", None), messages.ERR_EMPTY),
    (STRICT, changed("balance.1.funded_by", "\u3000"), messages.ERR_EMPTY),
    (STRICT, changed("teléfono", "1"), messages.ERR_UNKNOWN_FIELD),
    (LENIENT, changed("metrics.lifetime.visits", 1), messages.ERR_UNKNOWN_FIELD),
    (STRICT, changed("metrics.next_year", {}), messages.ERR_UNKNOWN_FIELD),
    (STRICT, changed("devices.0.device_info", "ios"), messages.ERR_NOT_OBJECT),
    (LENIENT, changed("metrics", ["lifetime"]), messages.ERR_NOT_OBJECT),
    (STRICT, changed("balance.2", 50.2), messages.ERR_NOT_OBJECT),
    (STRICT, changed("balance", {"reward_id": REWARD, "amount": 1}), messages.ERR_NOT_LIST),
    (LENIENT, changed("devices", "fcm:abc"), messages.ERR_NOT_LIST),
]
# Only a whole body can break these.
BODY_ONLY = {messages.ERR_TOO_FEW, messages.ERR_TOO_MANY}
BODY_ONLY |= {messages.ERR_DUPLICATE_ID, messages.ERR_DUPLICATE_EMAIL}


def has_message(found: list[PROBLEM], message: Any) -> bool:
    """Whether one of the problems is the message constant ``message``, formatted."""
    escaped = re.escape(str(message))
    pattern = re.compile(re.sub(r"%\\\((\w+)\\\)[sdg]", ".*", escaped), re.DOTALL)
    return any(pattern.fullmatch(text) for _path, _code, text, _kept in found)


def test_valid_customers_clean_to_the_same_values(customers):
    cleaned = [customers.compare(c, strict=True)[0] for c in strict_customers()]
    cleaned += [customers.compare(c, strict=False)[0] for c in lenient_customers()]
    assert customers.valid == len(cleaned) == 11
    assert customers.problems == []
    strict_full, lenient_full = cleaned[0], cleaned[len(strict_customers())]
    for full in (strict_full, lenient_full):
        assert (full["id"], full["name"]) == ("000123", NAME)
        amounts = [b["amount"] for b in full["balance"]]
        assert amounts[:2] == [Decimal("999999999.999999"), Decimal("123")]
        assert full["metrics"]["this_year"]["spend_total"] == Decimal("0.000001")
        assert str(full["metrics"]["lifetime"]["spend_total"]) == "50.2"
    assert strict_full["metadata"] == json.loads(FULL_STRICT)["metadata"]
    assert strict_full["metadata"]["niveles"]["ñ"][1] == {"ü": "ß", "vacío": {}}
    assert strict_full["metrics"]["lifetime"]["to"] == utc(2025, 2, 21, 14, 5, 42, 250000)
    # Read in the batch's time zone, or with the offset written, then in UTC.
    assert lenient_full["registration_date"] == utc(2023, 11, 7, 5, 31, 56)
    assert lenient_full["metrics"]["lifetime"]["to"] == utc(2025, 2, 21, 13, 5, 42)
    assert lenient_full["dob"] == utc(1990, 4, 1)
    assert lenient_full["metadata"]["niveles"] == {"ñ": [1, {"ü": "ß"}]}
    assert {"document_type", "document_number", "country"}.isdisjoint(lenient_full)


@pytest.mark.parametrize(("strict", "change", "message"), BROKEN)
def test_each_broken_rule_gives_the_same_problems(customers, strict, change, message):
    customer = (strict_customers() if strict else lenient_customers())[0]
    change(customer)
    _value, found = customers.compare(customer, strict=strict)
    assert found, "the reference found nothing to compare"
    assert has_message(found, message), found


def test_every_message_constant_is_broken_at_least_once():
    """Declared here; produced by both sides in the tests of broken rules and of bodies."""
    constants = {name: getattr(messages, name) for name in dir(messages) if name[:4] == "ERR_"}
    assert len(constants) > 20
    broken = {str(message) for _strict, _change, message in BROKEN}
    broken |= {str(message) for message in BODY_ONLY}
    assert {name for name, message in constants.items() if str(message) not in broken} == set()


def test_customers_with_many_problems_give_the_same_problems(customers):
    for strict, customer in ((True, strict_customers()[0]), (False, lenient_customers()[0])):
        for mode, change, _message in BROKEN:
            if mode == strict:
                # An earlier change may have removed or replaced what this one changes.
                with contextlib.suppress(KeyError, IndexError, TypeError, ValueError):
                    change(customer)
        customers.compare(customer, strict=strict)
    assert customers.valid == 0
    assert len(customers.problems) >= 20
    assert {code for _path, code, _text, _kept in customers.problems} >= {"invalid", "required"}


def body_cases() -> list[tuple[bool, Any, set[Any]]]:
    """(mode, body, message constants it must produce)."""
    valid = strict_customers()
    twice = [minimal("000123"), minimal("000123", email="otra@example.com"), minimal("123")]
    same_email = [minimal("1", email="Nu@Example.com"), minimal("2")]
    same_email[1]["email"] = same_email[0]["email"].upper()
    broken_inside = [*valid[:3], {**valid[1], "id": "", "gender": "otro"}]
    many = [minimal(f"{n:05d}") for n in range(messages.MAX_CUSTOMERS_PER_REQUEST + 1)]
    return [
        (True, {"customers": valid}, set()),
        (False, {"customers": lenient_customers()}, set()),
        (True, {"customers": []}, {messages.ERR_TOO_FEW}),
        (True, {"customers": many}, {messages.ERR_TOO_MANY}),
        (False, {"customers": {"0": valid[0]}}, {messages.ERR_NOT_LIST}),
        (True, [valid[0]], {messages.ERR_NOT_OBJECT}),
        (True, {}, {messages.ERR_REQUIRED}),
        (True, {"customers": valid, "cursor": "0"}, {messages.ERR_UNKNOWN_FIELD}),
        (True, {"customers": twice}, {messages.ERR_DUPLICATE_ID}),
        (False, {"customers": twice}, {messages.ERR_DUPLICATE_ID}),
        (True, {"customers": same_email}, {messages.ERR_DUPLICATE_EMAIL}),
        (True, {"customers": broken_inside}, {messages.ERR_EMPTY, messages.ERR_CHOICE}),
    ]


def test_bodies_give_the_same_problems_and_values(bodies):
    for strict, body, expected in body_cases():
        value, found = bodies.compare(body, strict=strict)
        for message in expected:
            assert has_message(found, message), (message, found)
        if not expected:
            assert found == []
            assert len(value["customers"]) == len(body["customers"])
    assert bodies.valid == 2
    codes = {code for _path, code, _text, _kept in bodies.problems}
    assert codes >= {"invalid", "required", "duplicate_id", "duplicate_email"}
    assert ("customers[3].gender", "invalid") in {problem[:2] for problem in bodies.problems}


# --- Random awkward values anywhere -----------------------------------------------------------
AWKWARD_TEXTS = ["", " ", "\u3000", "Ñandú", " 000123 ", "0", "MALE", "male", "ACTIVE", "web"]
AWKWARD_EMAILS = ["jose@example.com", "JOSÉ@example.com"]
AWKWARD_MOMENTS = ["2023-11-07T05:31:56Z", "2023-11-07T05:31:56.5Z", "2023-11-07 00:31:56"]
AWKWARD_MOMENTS += ["2023-11-07T00:31:56-05:00", "2023-11-07", "1990-04-01T00:00:00Z"]
AWKWARD_UUIDS = [TIER, TIER.upper(), f" {TIER} "]
AWKWARD_NUMBERS = ["50.20", "123.000000", "-0.000001", "1e3", 0, -1, 10**9, 2**31, 50.2, 1e-7]
AWKWARD_NUMBERS += [Decimal(text) for text in ("50.20", "0.000001", "999999999.999999", "1E+2")]
AWKWARD_OTHERS = [None, True, [], {}, [{}], {"ñ": {"ü": [1, None]}}, Decimal("-0")]
AWKWARD_VALUES = [*AWKWARD_TEXTS, *AWKWARD_EMAILS, *AWKWARD_MOMENTS, *AWKWARD_UUIDS]
AWKWARD_VALUES += [*AWKWARD_NUMBERS, *AWKWARD_OTHERS]


def leaf_paths(value: Any, prefix: str = "") -> list[str]:
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(index), item) for index, item in enumerate(value))
    else:
        return [prefix]
    paths = [prefix] if prefix else []
    for key, item in items:
        paths += leaf_paths(item, f"{prefix}.{key}" if prefix else key)
    return paths


def test_random_awkward_values_anywhere_give_the_same_answers(customers):
    generator = random.Random(20250301)
    bases = [(True, c) for c in strict_customers()] + [(False, c) for c in lenient_customers()]
    for _ in range(600):
        strict, base = generator.choice(bases)
        customer = copy.deepcopy(base)
        for _change in range(generator.randint(1, 3)):
            path = generator.choice(leaf_paths(customer) + ["extra", "metrics.lifetime.x"])
            value = generator.choice([*AWKWARD_VALUES, DELETE])
            with contextlib.suppress(KeyError, IndexError, TypeError, ValueError):
                changed(path, value if value is DELETE else copy.deepcopy(value))(customer)
        customers.compare(customer, strict=strict)
    assert customers.valid > 30
    assert len(customers.problems) > 300
    assert {code for _path, code, _text, _kept in customers.problems} >= {"invalid", "required"}
