"""The history's bodies (CONTRACT.md, "History: transactions and events"): the example
bodies pass, each rule refuses what it should with its message, and the limits of one
request hold."""

import copy
import datetime as dt
import json
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from customers.contract import (
    EventsCustomerSerializer,
    EventSerializer,
    FieldProblem,
    MigrateEventsRequestSerializer,
    MigrateTransactionsRequestSerializer,
    TransactionsCustomerSerializer,
    TransactionSerializer,
    messages,
    problems_from_errors,
    serializer_problems,
)
from customers.contract import history_rules as rules
from customers.contract.history_check import SERIALIZERS, HistoryEntryCheck

REWARD = "3c90c3cc-0d44-4b50-8888-8dd25736052a"

# The example bodies of CONTRACT.md, as written there.
TRANSACTIONS_BODY = json.loads("""
{"customers": [{"id": "legacy-000123", "transactions": [
  {"reward_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "type": "ACCUMULATION",
   "amount": 150, "issued_at": "2023-01-02T10:00:00Z", "resolved_at": "2023-01-02T10:00:05Z",
   "brand_id": "brand-1", "event": {"type": "PURCHASE",
   "order": {"purchase_id": "ORD-77", "value": 150.0}}},
  {"reward_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "type": "REDEMPTION",
   "amount": -27, "issued_at": "2023-05-09T18:30:00Z"}]}]}
""")
EVENTS_BODY = json.loads("""
{"customers": [{"id": "legacy-000123", "events": [
  {"type": "PURCHASE", "fulfilled": true, "issued_at": "2023-01-02T10:00:00Z",
   "resolved_at": "2023-01-02T10:00:05Z", "brand_id": "brand-1",
   "order": {"purchase_id": "ORD-77", "value": 150.0, "discounted_value": 140.0,
             "payment_method": "CREDIT", "store_id": "store-09",
             "products": [{"sku": "SKU-1", "amount": 2, "value": 75.0}]}}]}]}
""")
# Every field of an order, as Masivo's reference shows them.
FULL_ORDER = {
    "purchase_id": "ORD-78",
    "value": 20.95,
    "discounted_value": 10.95,
    "payment_method": "BANK_TRANSFER",
    "channel_id": "web",
    "store_id": "store-09",
    "products": [
        {
            "sku": "SKU-1",
            "amount": 1,
            "value": 10,
            "discounted_value": 8,
            "redeem": [{"id": REWARD, "amount": 1}],
            "tags": {"season": "summer"},
            "metadata": {"colour": "red"},
        },
        {"sku": "SKU-2", "amount": 0.5, "value": 10.95},
    ],
    "shipping": {
        "value": 3.25,
        "discounted_value": 2.25,
        "redeem": [{"id": REWARD, "amount": 1}],
        "tags": {},
        "metadata": {},
    },
    "redeem": [{"id": REWARD, "amount": 1}],
    "metadata": {"source": "legacy-crm"},
}


def transaction(**fields: Any) -> dict:
    return {**copy.deepcopy(TRANSACTIONS_BODY["customers"][0]["transactions"][0]), **fields}


def event(**fields: Any) -> dict:
    return {**copy.deepcopy(EVENTS_BODY["customers"][0]["events"][0]), **fields}


def problems(serializer_class, data: Any, *, strict: bool = True) -> dict[str, list[str]]:
    """``{path: [messages]}`` of ``data`` against ``serializer_class``."""
    serializer = serializer_class(data=data, context={"strict": strict})
    serializer.is_valid()
    found: dict[str, list[str]] = {}
    for problem in problems_from_errors(serializer.errors):
        found.setdefault(problem.field, []).append(problem.message)
    return found


def valid(serializer_class, data: Any, *, strict: bool = True) -> dict:
    serializer = serializer_class(data=data, context={"strict": strict})
    assert serializer.is_valid(), serializer.errors
    return serializer.validated_data


def text(message: Any, **params: Any) -> str:
    return str(message) % params if params else str(message)


# --- The example bodies --------------------------------------------------------------------------


def test_contract_example_bodies_pass_in_strict_mode():
    valid(MigrateTransactionsRequestSerializer, TRANSACTIONS_BODY)
    valid(MigrateEventsRequestSerializer, EVENTS_BODY)


def test_validated_transactions_keep_the_body_keys_with_values_ready_for_staging():
    data = valid(MigrateTransactionsRequestSerializer, TRANSACTIONS_BODY)
    entry = data["customers"][0]
    earned, spent = entry["transactions"]
    assert entry["id"] == "legacy-000123"
    assert earned["reward_id"] == uuid.UUID(REWARD)
    assert (earned["amount"], spent["amount"]) == (Decimal(150), Decimal(-27))
    assert earned["resolved_at"] == dt.datetime(2023, 1, 2, 10, 0, 5, tzinfo=dt.UTC)
    assert earned["event"]["order"] == {"purchase_id": "ORD-77", "value": Decimal("150")}
    assert "resolved_at" not in spent


def test_an_event_with_every_order_field_passes():
    data = valid(EventSerializer, event(order=FULL_ORDER))
    order = data["order"]
    assert order["products"][1]["amount"] == Decimal("0.5")
    assert order["shipping"]["redeem"][0]["id"] == uuid.UUID(REWARD)
    assert order["products"][0]["tags"] == {"season": "summer"}
    assert data["fulfilled"] is True


def test_a_transaction_may_carry_an_event_with_a_full_order():
    valid(TransactionSerializer, transaction(event={"type": "PURCHASE", "order": FULL_ORDER}))


# --- Rules: one transaction ----------------------------------------------------------------------


def test_reward_type_and_amount_are_required_by_default():
    tx = transaction()
    for name in ("reward_id", "type", "amount"):
        del tx[name]
    assert problems(TransactionSerializer, tx) == {
        name: [str(messages.ERR_REQUIRED)] for name in ("reward_id", "type", "amount")
    }


@override_settings(MASIVO_TX_REQUIRED_FIELDS=["amount", "issued_at"])
def test_required_transaction_fields_come_from_settings():
    tx = transaction()
    del tx["reward_id"], tx["issued_at"]
    assert problems(TransactionSerializer, tx) == {"issued_at": [str(messages.ERR_REQUIRED)]}


@override_settings(MASIVO_TX_REQUIRED_FIELDS=["points"])
def test_required_setting_naming_an_unknown_field_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured, match="points"):
        TransactionSerializer(data=transaction()).is_valid()


TYPES = "ACCUMULATION, REDEMPTION, EXPIRATION, MIGRATION, TRANSFER, REVERSAL"

TRANSACTION_CASES = [
    ({"reward_id": "oro"}, "reward_id", text(messages.ERR_UUID, value="oro")),
    (
        {"type": "accumulation"},
        "type",
        text(messages.ERR_CHOICE, value="accumulation", choices=TYPES),
    ),
    ({"type": "GIFT"}, "type", text(messages.ERR_CHOICE, value="GIFT", choices=TYPES)),
    ({"amount": "150"}, "amount", text(messages.ERR_NUMBER_TYPE)),
    ({"amount": True}, "amount", text(messages.ERR_NUMBER_TYPE)),
    ({"amount": 0}, "amount", text(rules.ERR_AMOUNT_ZERO)),
    (
        {"amount": Decimal("1.0000001")},
        "amount",
        text(messages.ERR_NUMBER_DIGITS, value="1.0000001", integer=9, decimals=6),
    ),
    (
        {"amount": -150},
        "amount",
        text(rules.ERR_AMOUNT_POSITIVE, type="ACCUMULATION", value="-150"),
    ),
    (
        {"type": "REDEMPTION", "amount": 27},
        "amount",
        text(rules.ERR_AMOUNT_NEGATIVE, type="REDEMPTION", value="27"),
    ),
    (
        {"type": "EXPIRATION", "amount": 5},
        "amount",
        text(rules.ERR_AMOUNT_NEGATIVE, type="EXPIRATION", value="5"),
    ),
    (
        {"issued_at": "2023-01-02T10:00:00+00:00"},
        "issued_at",
        text(messages.ERR_DATETIME_UTC, value="2023-01-02T10:00:00+00:00"),
    ),
    (
        {"resolved_at": "2023-01-02"},
        "resolved_at",
        text(messages.ERR_DATETIME_UTC, value="2023-01-02"),
    ),
    ({"brand_id": 7}, "brand_id", text(messages.ERR_TEXT)),
    ({"store_id": ""}, "store_id", text(messages.ERR_EMPTY)),
    ({"funded_by": None}, "funded_by", text(messages.ERR_EMPTY)),
    (
        {"channel_id": "c" * 256},
        "channel_id",
        text(messages.ERR_TEXT_TOO_LONG, max=255, length=256),
    ),
    ({"details": ["why"]}, "details", text(messages.ERR_TEXT)),
    ({"cost": "12"}, "cost", text(messages.ERR_NUMBER_TYPE)),
    ({"points": 3}, "points", text(messages.ERR_UNKNOWN_FIELD, field="points")),
    ({"event": "PURCHASE"}, "event", text(messages.ERR_NOT_OBJECT)),
    ({"event": {"order": {}}}, "event.type", text(messages.ERR_REQUIRED)),
    ({"event": {"type": "PURCHASE", "order": []}}, "event.order", text(messages.ERR_NOT_OBJECT)),
]


@pytest.mark.parametrize(("change", "path", "message"), TRANSACTION_CASES)
def test_each_transaction_rule_refuses_with_its_message(change, path, message):
    assert problems(TransactionSerializer, transaction(**change)) == {path: [message]}


@pytest.mark.parametrize(
    "change",
    [
        {"type": "MIGRATION", "amount": -3},
        {"type": "REVERSAL", "amount": 3},
        {"type": "TRANSFER", "amount": -0.5},
        {"type": "REDEMPTION", "amount": -27, "cost": 0},
        {"amount": Decimal("999999999.999999")},
    ],
)
def test_amounts_of_either_sign_pass_where_the_type_allows(change):
    valid(TransactionSerializer, transaction(**change))


def test_files_may_give_types_in_any_case_and_amounts_as_text():
    data = valid(
        TransactionSerializer,
        transaction(type=" redemption ", amount="-27.50", issued_at="2023-05-09"),
        strict=False,
    )
    assert (data["type"], data["amount"]) == ("REDEMPTION", Decimal("-27.5"))
    assert data["issued_at"] == dt.datetime(2023, 5, 9, tzinfo=dt.UTC)


@override_settings(MASIVO_TX_TYPES=["EARN", "BURN"])
def test_transaction_types_come_from_settings():
    assert problems(TransactionSerializer, transaction()) == {
        "type": [text(messages.ERR_CHOICE, value="ACCUMULATION", choices="EARN, BURN")]
    }
    valid(TransactionSerializer, transaction(type="EARN"))


# --- Rules: one event ----------------------------------------------------------------------------


def test_event_type_order_and_dates_are_required():
    ev = event()
    for name in ("type", "order", "issued_at", "resolved_at"):
        del ev[name]
    assert problems(EventSerializer, ev) == {
        name: [str(messages.ERR_REQUIRED)] for name in ("type", "order", "issued_at", "resolved_at")
    }


def test_fulfilled_is_required_of_the_body_as_sent():
    ev = event()
    del ev["fulfilled"]
    assert problems(EventSerializer, ev) == {"fulfilled": [str(messages.ERR_REQUIRED)]}


def test_fulfilled_may_be_left_out_of_a_file_and_is_not_added():
    ev = event()
    del ev["fulfilled"]
    assert "fulfilled" not in valid(EventSerializer, ev, strict=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("yes", True), (" NO ", False), ("1", True), (0, False)],
)
def test_files_may_write_fulfilled_as_yes_no_or_1_0(value, expected):
    assert valid(EventSerializer, event(fulfilled=value), strict=False)["fulfilled"] is expected


@pytest.mark.parametrize(
    ("value", "strict"), [("true", True), (1, True), ("maybe", False), (2, False)]
)
def test_fulfilled_refuses_what_is_not_true_or_false(value, strict):
    assert problems(EventSerializer, event(fulfilled=value), strict=strict) == {
        "fulfilled": [text(rules.ERR_BOOLEAN, value=str(value))]
    }


def test_an_empty_order_passes():
    valid(EventSerializer, event(type="SIGN_UP", order={}))


PAYMENTS = "CREDIT, DEBIT, CASH, BANK_TRANSFER, OTHER"

EVENT_CASES = [
    ({"type": 12}, "type", text(messages.ERR_TEXT)),
    ({"order": "ORD-77"}, "order", text(messages.ERR_NOT_OBJECT)),
    ({"order": None}, "order", text(messages.ERR_EMPTY)),
    ({"issued_at": "yesterday"}, "issued_at", text(messages.ERR_DATETIME_UTC, value="yesterday")),
    ({"brand_id": ""}, "brand_id", text(messages.ERR_EMPTY)),
    ({"channel_id": "web"}, "channel_id", text(messages.ERR_UNKNOWN_FIELD, field="channel_id")),
    (
        {"order": {"payment_method": "VISA"}},
        "order.payment_method",
        text(messages.ERR_CHOICE, value="VISA", choices=PAYMENTS),
    ),
    ({"order": {"value": "150"}}, "order.value", text(messages.ERR_NUMBER_TYPE)),
    ({"order": {"metadata": "crm"}}, "order.metadata", text(messages.ERR_METADATA)),
    ({"order": {"products": {"sku": "A"}}}, "order.products", text(messages.ERR_NOT_LIST)),
    (
        {"order": {"products": [{"sku": "A"}, {"sku": 5}]}},
        "order.products[1].sku",
        text(messages.ERR_TEXT),
    ),
    (
        {"order": {"products": [{"sku": "A", "tags": ["x"]}]}},
        "order.products[0].tags",
        text(messages.ERR_METADATA),
    ),
    (
        {"order": {"products": [{"redeem": [{"id": "gold", "amount": 1}]}]}},
        "order.products[0].redeem[0].id",
        text(messages.ERR_UUID, value="gold"),
    ),
    (
        {"order": {"redeem": [{"id": REWARD}]}},
        "order.redeem[0].amount",
        text(messages.ERR_REQUIRED),
    ),
    (
        {"order": {"shipping": {"value": True}}},
        "order.shipping.value",
        text(messages.ERR_NUMBER_TYPE),
    ),
    (
        {"order": {"shipping": {"cost": 3}}},
        "order.shipping.cost",
        text(messages.ERR_UNKNOWN_FIELD, field="cost"),
    ),
]


@pytest.mark.parametrize(("change", "path", "message"), EVENT_CASES)
def test_each_event_rule_refuses_with_its_message(change, path, message):
    assert problems(EventSerializer, event(**change)) == {path: [message]}


@override_settings(MASIVO_PAYMENT_METHODS=["CARD"])
def test_payment_methods_come_from_settings():
    assert problems(EventSerializer, event()) == {
        "order.payment_method": [text(messages.ERR_CHOICE, value="CREDIT", choices="CARD")]
    }


# --- Paths -------------------------------------------------------------------------------------


def test_problems_name_the_item_and_the_field():
    entry = {"id": "c-1", "transactions": [transaction() for _n in range(4)]}
    entry["transactions"][3]["amount"] = "3"
    assert problems(TransactionsCustomerSerializer, entry) == {
        "transactions[3].amount": [text(messages.ERR_NUMBER_TYPE)]
    }
    entry = {"id": "c-1", "events": [event(order={"products": [{"sku": "A"}, {"sku": 5}]})]}
    assert problems(EventsCustomerSerializer, entry) == {
        "events[0].order.products[1].sku": [text(messages.ERR_TEXT)]
    }


def test_a_request_names_the_customer_entry_of_each_problem():
    body = copy.deepcopy(EVENTS_BODY)
    body["customers"].append({"id": "c-2", "events": [event(), event(fulfilled="no")]})
    assert problems(MigrateEventsRequestSerializer, body) == {
        "customers[1].events[1].fulfilled": [text(rules.ERR_BOOLEAN, value="no")]
    }


# --- Limits of one request ---------------------------------------------------------------------


def tx_body(*counts: int) -> dict:
    return {
        "customers": [
            {"id": f"c-{n}", "transactions": [transaction() for _i in range(count)]}
            for n, count in enumerate(counts)
        ]
    }


def ev_body(*counts: int) -> dict:
    return {
        "customers": [
            {"id": f"c-{n}", "events": [event() for _i in range(count)]}
            for n, count in enumerate(counts)
        ]
    }


def test_every_customer_entry_holds_at_least_one_item():
    assert problems(MigrateTransactionsRequestSerializer, tx_body(1, 0)) == {
        "customers[1].transactions": [str(rules.ERR_NO_TRANSACTIONS)]
    }
    assert problems(MigrateEventsRequestSerializer, ev_body(0, 2)) == {
        "customers[0].events": [str(rules.ERR_NO_EVENTS)]
    }


def test_an_entry_needs_its_items_and_a_request_its_customers():
    assert problems(MigrateTransactionsRequestSerializer, {"customers": [{"id": "c-1"}]}) == {
        "customers[0].transactions": [str(messages.ERR_REQUIRED)]
    }
    assert problems(MigrateEventsRequestSerializer, {"customers": []}) == {
        "customers": [text(messages.ERR_TOO_FEW, min=1, count=0)]
    }
    assert problems(MigrateEventsRequestSerializer, {}) == {
        "customers": [str(messages.ERR_REQUIRED)]
    }


@override_settings(MASIVO_TX_MAX_ITEMS=5, MASIVO_EVENTS_MAX_ITEMS=4)
def test_a_request_takes_at_most_the_settings_number_of_items_in_all():
    valid(MigrateTransactionsRequestSerializer, tx_body(2, 3))
    assert problems(MigrateTransactionsRequestSerializer, tx_body(2, 3, 1)) == {
        "customers": [text(rules.ERR_REQUEST_TRANSACTIONS, max=5, count=6)]
    }
    valid(MigrateEventsRequestSerializer, ev_body(1, 3))
    assert problems(MigrateEventsRequestSerializer, ev_body(2, 3)) == {
        "customers": [text(rules.ERR_REQUEST_EVENTS, max=4, count=5)]
    }


@override_settings(MASIVO_TX_MAX_ITEMS=2, MASIVO_EVENTS_MAX_ITEMS=2)
def test_one_customer_with_more_items_than_a_request_takes_is_refused():
    assert problems(TransactionsCustomerSerializer, tx_body(3)["customers"][0]) == {
        "transactions": [text(rules.ERR_CUSTOMER_TRANSACTIONS, max=2, count=3)]
    }
    assert problems(EventsCustomerSerializer, ev_body(3)["customers"][0]) == {
        "events": [text(rules.ERR_CUSTOMER_EVENTS, max=2, count=3)]
    }


@override_settings(MASIVO_TX_MAX_CUSTOMERS=2, MASIVO_EVENTS_MAX_CUSTOMERS=3)
def test_a_request_takes_at_most_the_settings_number_of_customers():
    valid(MigrateTransactionsRequestSerializer, tx_body(1, 1))
    assert problems(MigrateTransactionsRequestSerializer, tx_body(1, 1, 1)) == {
        "customers": [text(messages.ERR_TOO_MANY, max=2, count=3)]
    }
    assert problems(MigrateEventsRequestSerializer, ev_body(1, 1, 1, 1)) == {
        "customers": [text(messages.ERR_TOO_MANY, max=3, count=4)]
    }


def test_the_default_limits_are_1000_items_and_1000_customers():
    valid(MigrateEventsRequestSerializer, ev_body(*[1] * 1000))
    assert problems(MigrateEventsRequestSerializer, ev_body(*[1] * 1001)) == {
        "customers": [text(messages.ERR_TOO_MANY, max=1000, count=1001)]
    }
    assert problems(MigrateTransactionsRequestSerializer, tx_body(600, 401)) == {
        "customers": [text(rules.ERR_REQUEST_TRANSACTIONS, max=1000, count=1001)]
    }


def test_each_customer_id_has_one_entry_per_request():
    body = tx_body(1, 1, 1)
    body["customers"][2]["id"] = "c-0"
    serializer = MigrateTransactionsRequestSerializer(data=body, context={"strict": True})
    assert not serializer.is_valid()
    found = problems_from_errors(serializer.errors)
    message = text(rules.ERR_HISTORY_DUPLICATE_ID, value="c-0")
    assert [(p.field, p.code, p.message) for p in found] == [
        ("customers[0].id", "duplicate_id", message),
        ("customers[2].id", "duplicate_id", message),
    ]


# --- Every message ---------------------------------------------------------------------------


def test_every_history_message_is_produced_by_these_tests():
    """The cases above produce each message constant of ``history_rules``."""
    constants = {name: getattr(rules, name) for name in dir(rules) if name.startswith("ERR_")}
    produced = {message for _change, _path, message in TRANSACTION_CASES + EVENT_CASES}
    produced |= {str(rules.ERR_BOOLEAN % {"value": "maybe"})}
    produced |= {str(rules.ERR_NO_TRANSACTIONS), str(rules.ERR_NO_EVENTS)}
    produced |= {text(rules.ERR_CUSTOMER_TRANSACTIONS, max=2, count=3)}
    produced |= {text(rules.ERR_CUSTOMER_EVENTS, max=2, count=3)}
    produced |= {text(rules.ERR_REQUEST_TRANSACTIONS, max=5, count=6)}
    produced |= {text(rules.ERR_REQUEST_EVENTS, max=4, count=5)}
    produced |= {text(rules.ERR_HISTORY_DUPLICATE_ID, value="c-0")}

    def matches(message: Any) -> bool:
        pattern = re.sub(r"%\\\((\w+)\\\)[sdg]", ".*", re.escape(str(message)))
        return any(re.fullmatch(pattern, found, re.DOTALL) for found in produced)

    assert sorted(name for name, message in constants.items() if not matches(message)) == []


def test_one_tree_checking_many_entries_finds_what_a_tree_per_entry_finds():
    """Validation runs every row of a kind through one serializer tree: each entry gets the
    problems, codes and untranslated messages a fresh serializer gives it, whatever the
    entries before it."""
    entries = [("transactions", transaction())]
    entries += [("transactions", transaction(**change)) for change, _p, _m in TRANSACTION_CASES]
    entries += [("events", event(**change)) for change, _p, _m in EVENT_CASES]
    entries += [("events", event()), ("transactions", transaction(type="GIFT", amount=0))]
    entries += entries[::-1]

    def said(found: list[FieldProblem]) -> list[tuple]:
        return [(p.field, p.code, p.message, str(p.untranslated)) for p in found]

    def alone(kind: str, entry: dict) -> list[FieldProblem]:
        serializer = SERIALIZERS[kind](data=entry, context={"strict": True})
        return [] if serializer.is_valid() else serializer_problems(serializer)

    check = HistoryEntryCheck()
    reused = [said(check.problems(kind, entry)) for kind, entry in entries]
    assert reused == [said(alone(kind, entry)) for kind, entry in entries]
    assert sum(1 for found in reused if found) == 2 * (len(entries) // 2 - 2)
