"""The history's own rules (CONTRACT.md, "History: transactions and events"): its
messages, ``Boolean`` (an event's ``fulfilled``), ``SignedAmount`` (a transaction's
``amount``) with the sign each type takes (``AMOUNT_SIGNS``), and the limits of one request
(``HistoryLimits``: ``TRANSACTIONS`` and ``EVENTS``, read from settings when validation runs).
The serializers built from them are in ``history``."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from customers.contract.messages import ContractError, shown_value
from customers.contract.rules import ContractContext, Number, Rule

# --- Messages ----------------------------------------------------------------------------------
ERR_BOOLEAN = _("“%(value)s” is not true or false.")
ERR_AMOUNT_ZERO = _(
    "A transaction's amount is never 0: positive when rewards are earned, negative when "
    "they are spent or expire."
)
ERR_AMOUNT_POSITIVE = _(
    "Type %(type)s adds rewards: its amount is positive, such as 150; “%(value)s” is not."
)
ERR_AMOUNT_NEGATIVE = _(
    "Type %(type)s takes rewards away: its amount is negative, such as -27; “%(value)s” is not."
)
ERR_NO_TRANSACTIONS = _("A customer entry holds at least one transaction; this one has none.")
ERR_NO_EVENTS = _("A customer entry holds at least one event; this one has none.")
ERR_CUSTOMER_TRANSACTIONS = _(
    "A customer's transactions go in one request, which takes at most %(max)d; this customer "
    "has %(count)d."
)
ERR_CUSTOMER_EVENTS = _("A request takes at most %(max)d events; this entry has %(count)d.")
ERR_REQUEST_TRANSACTIONS = _(
    "A request takes at most %(max)d transactions in all; this one has %(count)d."
)
ERR_REQUEST_EVENTS = _("A request takes at most %(max)d events in all; this one has %(count)d.")
ERR_HISTORY_DUPLICATE_ID = _(
    "Id “%(value)s” has more than one entry in this request: a customer's history goes in "
    "one entry."
)

# The sign of an amount by transaction type: earned (+1), spent or expired (-1). Types not
# listed (MIGRATION, TRANSFER, REVERSAL) may go either way.
AMOUNT_SIGNS: dict[str, int] = {"ACCUMULATION": 1, "REDEMPTION": -1, "EXPIRATION": -1}
# Text inside an order has no staging column of its own: the length of an id column.
ORDER_TEXT_MAX = 255


# --- Rules -------------------------------------------------------------------------------------
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


@dataclass(frozen=True, slots=True)
class Boolean(Rule):
    """JSON ``true`` or ``false``; in lenient mode also yes/no, 1/0, t/f, in any case."""

    def clean(self, value: Any, ctx: ContractContext) -> bool:
        if type(value) is bool:
            return value
        if not ctx.strict:
            if type(value) is int and value in (0, 1):
                return bool(value)
            if type(value) is str:
                text = value.strip().lower()
                if text in _TRUE or text in _FALSE:
                    return text in _TRUE
        raise ContractError(ERR_BOOLEAN, value=shown_value(value))


_NUMBER = Number()


@dataclass(frozen=True, slots=True)
class SignedAmount(Rule):
    """A transaction's amount: a ``Number`` (the balances' digits), positive or negative,
    never 0. Its sign against its type is the transaction's check (``AMOUNT_SIGNS``)."""

    def clean(self, value: Any, ctx: ContractContext) -> Decimal:
        amount = _NUMBER.clean(value, ctx)
        if not amount:
            raise ContractError(ERR_AMOUNT_ZERO)
        return amount


# --- Limits of one request ------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryLimits:
    """What one request of a history endpoint takes: the entries' list (``items``), the
    settings of its limits, and the messages that refuse them."""

    items: str
    max_items_setting: str
    max_customers_setting: str
    empty: Any
    entry_too_many: Any
    request_too_many: Any

    @property
    def max_items(self) -> int:
        return int(getattr(settings, self.max_items_setting))

    @property
    def max_customers(self) -> int:
        return int(getattr(settings, self.max_customers_setting))


TRANSACTIONS = HistoryLimits(
    items="transactions",
    max_items_setting="MASIVO_TX_MAX_ITEMS",
    max_customers_setting="MASIVO_TX_MAX_CUSTOMERS",
    empty=ERR_NO_TRANSACTIONS,
    entry_too_many=ERR_CUSTOMER_TRANSACTIONS,
    request_too_many=ERR_REQUEST_TRANSACTIONS,
)
EVENTS = HistoryLimits(
    items="events",
    max_items_setting="MASIVO_EVENTS_MAX_ITEMS",
    max_customers_setting="MASIVO_EVENTS_MAX_CUSTOMERS",
    empty=ERR_NO_EVENTS,
    entry_too_many=ERR_CUSTOMER_EVENTS,
    request_too_many=ERR_REQUEST_EVENTS,
)
