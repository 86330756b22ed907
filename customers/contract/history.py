"""The history's bodies (CONTRACT.md, "History: transactions and events") as DRF serializers:
``POST /customers/migrate/transactions`` (``{"customers": [{"id", "transactions": [...]}]}``)
and ``POST /customers/migrate/events`` (``{"customers": [{"id", "events": [...]}]}``).

Built like the customers' body (``serializers``): the same rule objects at the leaves, the
same two modes (``context={"strict": True}``: the body as sent; lenient, the default:
values read from files), the same messages style, and ``problems_from_errors`` reads their
errors with paths such as ``transactions[3].amount`` or ``events[0].order.products[1].sku``.

What the contract assumes is a setting, read when validation runs: the transaction types
(``MASIVO_TX_TYPES``), the payment methods (``MASIVO_PAYMENT_METHODS``), a transaction's
required fields (``MASIVO_TX_REQUIRED_FIELDS``) and the limits of one request
(``MASIVO_TX_MAX_ITEMS`` and ``MASIVO_TX_MAX_CUSTOMERS``; ``MASIVO_EVENTS_MAX_ITEMS`` and
``MASIVO_EVENTS_MAX_CUSTOMERS``).

What the history adds to the customers' rules (``history_rules``):

- ``Boolean`` (an event's ``fulfilled``): JSON ``true`` or ``false``; read from files, also
  yes/no, 1/0 and t/f in any case. Strict mode requires it; a file may leave it out, and
  the console then sends ``true``, so lenient mode does not add it.
- ``SignedAmount`` (a transaction's ``amount``): a number with the balances' digits, never
  0; and, for the types listed in ``AMOUNT_SIGNS``, positive when rewards are earned,
  negative when they are spent or expire.
- the limits of one request: every customer entry holds at least one item; at most the
  setting's number of items in all and of customers; each id in one entry only.
- where the contract is silent, our reading: a transaction's ``event`` names its ``type``;
  a ``redeem`` entry names the reward (``id``) and the ``amount``; ``tags`` are a JSON
  object, as Masivo's examples show.

The compiled checker (``checker``) does not cover these bodies: they are checked a
customer's history at a time, and the serializers are quick enough for that.
"""

from collections.abc import Mapping
from typing import Any, ClassVar

from rest_framework import serializers
from rest_framework.settings import api_settings

from customers.contract.history_rules import (
    AMOUNT_SIGNS,
    ERR_AMOUNT_NEGATIVE,
    ERR_AMOUNT_POSITIVE,
    ERR_HISTORY_DUPLICATE_ID,
    EVENTS,
    ORDER_TEXT_MAX,
    TRANSACTIONS,
    Boolean,
    HistoryLimits,
    SignedAmount,
)
from customers.contract.messages import ERR_REQUIRED, Code, ContractError, shown_value
from customers.contract.rules import (
    Choice,
    ContractContext,
    DateTime,
    JSONObject,
    Number,
    Text,
    Uuid,
)
from customers.contract.serializers import (
    ContractListSerializer,
    ContractSerializer,
    RuleField,
    contract_context,
    error_detail,
)
from customers.models import StagedEvent, StagedTransaction


def _text(model, name: str) -> RuleField:
    return RuleField(Text(model._meta.get_field(name).max_length))


def _order_text() -> RuleField:
    return RuleField(Text(ORDER_TEXT_MAX))


# --- The order, shared by events and by a transaction's event ----------------------------------
class RedeemSerializer(ContractSerializer):
    """One reward redeemed: which (``id``) and how much."""

    always_required = ("id", "amount")

    id = RuleField(Uuid())
    amount = RuleField(Number())


class ProductSerializer(ContractSerializer):
    sku = _order_text()
    amount = RuleField(Number())
    value = RuleField(Number())
    discounted_value = RuleField(Number())
    redeem = RedeemSerializer(many=True, required=False)
    tags = RuleField(JSONObject())
    metadata = RuleField(JSONObject())


class ShippingSerializer(ContractSerializer):
    value = RuleField(Number())
    discounted_value = RuleField(Number())
    redeem = RedeemSerializer(many=True, required=False)
    tags = RuleField(JSONObject())
    metadata = RuleField(JSONObject())


class OrderSerializer(ContractSerializer):
    purchase_id = _order_text()
    value = RuleField(Number())
    discounted_value = RuleField(Number())
    payment_method = RuleField(Choice("MASIVO_PAYMENT_METHODS"))
    channel_id = _order_text()
    store_id = _order_text()
    products = ProductSerializer(many=True, required=False)
    shipping = ShippingSerializer(required=False)
    redeem = RedeemSerializer(many=True, required=False)
    metadata = RuleField(JSONObject())


# --- One transaction, one event --------------------------------------------------------------
class TransactionEventSerializer(ContractSerializer):
    """The event behind a transaction (``{"type": "PURCHASE", "order": {...}}``)."""

    always_required = ("type",)

    type = _text(StagedEvent, "type")
    order = OrderSerializer(required=False)


class TransactionSerializer(ContractSerializer):
    required_setting = "MASIVO_TX_REQUIRED_FIELDS"

    reward_id = RuleField(Uuid())
    type = RuleField(Choice("MASIVO_TX_TYPES"))
    amount = RuleField(SignedAmount())
    issued_at = RuleField(DateTime())
    resolved_at = RuleField(DateTime())
    brand_id = _text(StagedTransaction, "brand_id")
    store_id = _text(StagedTransaction, "store_id")
    channel_id = _text(StagedTransaction, "channel_id")
    funded_by = _text(StagedTransaction, "funded_by")
    details = _text(StagedTransaction, "details")
    cost = RuleField(Number())
    event = TransactionEventSerializer(required=False)

    def validate(self, attrs: dict) -> dict:
        """The amount's sign against the type: earned is positive, spent or expired negative."""
        kind, amount = attrs.get("type"), attrs.get("amount")
        sign = AMOUNT_SIGNS.get(kind)
        if sign is not None and amount is not None and (amount > 0) != (sign > 0):
            message = ERR_AMOUNT_POSITIVE if sign > 0 else ERR_AMOUNT_NEGATIVE
            error = ContractError(message, type=kind, value=shown_value(format(amount, "f")))
            raise serializers.ValidationError({"amount": error_detail(self, error)})
        return attrs


class EventSerializer(ContractSerializer):
    """One event. ``fulfilled`` is required of the body as sent (``strict_required``): a
    file may leave it out, and the console then sends ``true``."""

    always_required = ("type", "order", "issued_at", "resolved_at")
    strict_required: ClassVar[tuple[str, ...]] = ("fulfilled",)

    type = _text(StagedEvent, "type")
    order = OrderSerializer(required=False)
    fulfilled = RuleField(Boolean())
    issued_at = RuleField(DateTime())
    resolved_at = RuleField(DateTime())
    brand_id = _text(StagedEvent, "brand_id")

    def to_internal_value(self, data: Any) -> dict:
        missing: list[str] = []
        if contract_context(self).strict and isinstance(data, Mapping):
            missing = [name for name in self.strict_required if name not in data]
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors = dict(exc.detail)
        else:
            errors = {}
        for name in missing:
            required = ContractError(ERR_REQUIRED, Code.REQUIRED.value)
            errors.setdefault(name, error_detail(self, required))
        if errors:
            raise serializers.ValidationError(errors)
        return value


# --- A customer's entry and the request ------------------------------------------------------
def _list_refusal(bound: serializers.Field, message: Any, **params) -> serializers.ValidationError:
    error = ContractError(message, **params)
    return serializers.ValidationError(
        {api_settings.NON_FIELD_ERRORS_KEY: error_detail(bound, error)}
    )


class HistoryItemsSerializer(ContractListSerializer):
    """A customer entry's transactions or events: at least one, and no more than a request
    takes in all."""

    def __init__(self, *args, limits: HistoryLimits, **kwargs):
        self.limits = limits
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data: Any) -> list:
        if isinstance(data, list):
            maximum = self.limits.max_items
            if not data:
                raise _list_refusal(self, self.limits.empty)
            if len(data) > maximum:
                too_many = self.limits.entry_too_many
                raise _list_refusal(self, too_many, max=maximum, count=len(data))
        return super().to_internal_value(data)


class HistoryEntriesSerializer(ContractListSerializer):
    """The request's customer entries: 1 to the setting's number of customers, holding at
    most the setting's number of items in all."""

    def __init__(self, *args, limits: HistoryLimits, **kwargs):
        self.limits = limits
        kwargs.setdefault("min_length", 1)
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data: Any) -> list:
        self.max_length = self.limits.max_customers
        if isinstance(data, list) and len(data) <= self.max_length:
            items = self.limits.items
            total = sum(
                len(entry[items])
                for entry in data
                if isinstance(entry, Mapping) and isinstance(entry.get(items), list)
            )
            maximum = self.limits.max_items
            if total > maximum:
                too_many = self.limits.request_too_many
                raise _list_refusal(self, too_many, max=maximum, count=total)
        return super().to_internal_value(data)


class HistoryCustomerSerializer(ContractSerializer):
    """A customer's entry: its legacy ``id`` (the customer's own, already migrated)."""

    id = _text(StagedTransaction, "customer_legacy_id")

    @classmethod
    def find_duplicates(
        cls, items: list, ctx: ContractContext
    ) -> dict[int, dict[str, ContractError]]:
        """The same ``id`` in two entries of one request."""
        seen: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            value = item.get("id") if isinstance(item, Mapping) else None
            if isinstance(value, str) and value.strip():
                seen.setdefault(value if ctx.strict else value.strip(), []).append(index)
        found: dict[int, dict[str, ContractError]] = {}
        for indexes in seen.values():
            if len(indexes) > 1:
                for index in indexes:
                    shown = shown_value(items[index]["id"])
                    error = ContractError(
                        ERR_HISTORY_DUPLICATE_ID, Code.DUPLICATE_ID.value, value=shown
                    )
                    found[index] = {"id": error}
        return found


class TransactionsCustomerSerializer(HistoryCustomerSerializer):
    always_required = ("id", "transactions")

    transactions = HistoryItemsSerializer(child=TransactionSerializer(), limits=TRANSACTIONS)


class EventsCustomerSerializer(HistoryCustomerSerializer):
    always_required = ("id", "events")

    events = HistoryItemsSerializer(child=EventSerializer(), limits=EVENTS)


class MigrateTransactionsRequestSerializer(ContractSerializer):
    """The body of ``POST /customers/migrate/transactions``."""

    always_required = ("customers",)

    customers = HistoryEntriesSerializer(
        child=TransactionsCustomerSerializer(), limits=TRANSACTIONS
    )


class MigrateEventsRequestSerializer(ContractSerializer):
    """The body of ``POST /customers/migrate/events``."""

    always_required = ("customers",)

    customers = HistoryEntriesSerializer(child=EventsCustomerSerializer(), limits=EVENTS)
