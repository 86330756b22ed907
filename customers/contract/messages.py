"""Limits, the operator-facing messages, and the error types every contract rule uses."""

import dataclasses
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _

from console.messages import Message
from customers.models import (
    AMOUNT_DECIMALS,
    AMOUNT_DIGITS,
    CustomerProblem,
    Period,
)

Code = CustomerProblem.Code

MAX_CUSTOMERS_PER_REQUEST = 1000
PERIODS: tuple[str, ...] = tuple(Period.values)
INTEGER_DIGITS = AMOUNT_DIGITS - AMOUNT_DECIMALS
MAX_COUNT = 2_147_483_647
# The settings enum rules read; a context reads them all when it is built.
CHOICE_SETTINGS = ("MASIVO_GENDERS", "MASIVO_STATUSES", "MASIVO_DEVICE_PLATFORMS")

# --- Messages ----------------------------------------------------------------------------------
ERR_REQUIRED = _("Required: Masivo refuses an entry without it.")
ERR_EMPTY = _(
    'Empty values are not sent: leave the field out instead of sending null, "" or blanks.'
)
ERR_UNKNOWN_FIELD = _("“%(field)s” is not a field Masivo accepts here.")
ERR_NOT_OBJECT = _("Must be a JSON object (name and value pairs), not a list, text or number.")
ERR_NOT_LIST = _("Must be a JSON array (a list of entries).")
ERR_TOO_FEW = _("Needs at least %(min)d entries; this one has %(count)d.")
ERR_TOO_MANY = _("Takes at most %(max)d entries; this one has %(count)d.")
ERR_TEXT = _("Must be text, such as “legacy-000123”.")
ERR_TEXT_TOO_LONG = _("Must be at most %(max)d characters long; this value has %(length)d.")
ERR_EMAIL = _("“%(value)s” is not a valid email address.")
ERR_DATETIME = _(
    "“%(value)s” is not a date-time such as 2023-11-07T05:31:56Z or "
    "2023-11-07T00:31:56-05:00, nor a date such as 2023-11-07."
)
ERR_DATETIME_UTC = _("“%(value)s” is not a date-time in UTC written like 2023-11-07T05:31:56Z.")
ERR_DOB_MIDNIGHT = _(
    "A date of birth is sent at midnight UTC, like 1990-04-01T00:00:00Z; “%(value)s” is not."
)
ERR_CHOICE = _("“%(value)s” is not one of: %(choices)s.")
ERR_UUID = _("“%(value)s” is not a UUID such as 3c90c3cc-0d44-4b50-8888-8dd25736052a.")
ERR_NUMBER = _("“%(value)s” is not a number such as 50.2.")
ERR_NUMBER_TYPE = _("Must be a JSON number such as 50.2, not text or true/false.")
ERR_NUMBER_DIGITS = _(
    "“%(value)s” has too many digits: at most %(integer)d before the decimal point and "
    "%(decimals)d after it."
)
ERR_COUNT = _("“%(value)s” is not a whole number of 0 or more, such as 10.")
ERR_COUNT_MAX = _("“%(value)s” is too large: at most %(max)d.")
ERR_METADATA = _(
    'Must be a JSON object such as {"source": "legacy-crm"}, not a list, text or number.'
)
ERR_DUPLICATE_ID = _(
    "Id “%(value)s” appears more than once in this request; ids are unique per Masivo account."
)
ERR_DUPLICATE_EMAIL = _(
    "Email “%(value)s” appears more than once in this request; emails are unique per Masivo "
    "account, whatever their case."
)

SHOWN_MAX = 80


def shown_value(value: Any) -> str:
    """A value as quoted in a message: text as is, shortened when long."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, int | float | Decimal):
        text = str(value)
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"


class ContractError(ValueError):
    """A value breaks a contract rule. A ``ValueError``, so import widgets can raise it.

    ``ContractError(ERR_EMAIL, value=shown)``: the message constant and its parameters,
    kept untranslated (``untranslated``, for what is stored); ``message`` is the sentence
    in the active language."""

    def __init__(self, template: Any, code: str = Code.INVALID.value, **params: Any):
        self.untranslated = Message.of(template, **params)
        self.message = str(self.untranslated)
        self.code = code
        super().__init__(self.message)


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One broken rule: where (``balance[0].amount``), what kind (a ``CustomerProblem.Code``
    value) and a sentence for the operator, in the active language (``message``) and kept
    untranslated (``untranslated``; equal problems say the same words, so it is not
    compared)."""

    field: str
    code: str
    message: str
    # Filled in from ``message`` (as verbatim words) when not given.
    untranslated: Message | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.untranslated is None:
            object.__setattr__(self, "untranslated", Message.verbatim(self.message))
