"""Cell parsers for staging imports, as django-import-export widgets.

Each ``clean`` turns one cell (text from CSV, a typed value from XLSX or JSON) into the
value a staging column stores, or raises ``ValueError`` with a message that says what is
wrong and what would be right: a ``ContractError``, which keeps the message untranslated
for a background upload's later readers. Empty cells are ``None`` (or ``""`` for text
columns).
The JSON arrays and objects of the history's files are read by ``customers.json_widgets``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
import zoneinfo
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from import_export.widgets import Widget

from customers.contract.bounds import metadata_check, metadata_text_check
from customers.contract.messages import ContractError

UTC = dt.UTC
_PLAIN_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")

ERR_VALUE_REQUIRED = _("a value is required")
ERR_TEXT_GOT_BOOLEAN = _("expected text, got a true/false value")
ERR_TEXT_GOT_JSON = _("expected text, got a JSON %(type)s")
ERR_TEXT_TOO_LONG = _("is %(length)s characters long; at most %(max)s are allowed")
ERR_NOT_ONE_OF = _("“%(value)s” is not one of %(allowed)s")
ERR_NOT_A_NUMBER = _(
    "“%(value)s” is not a number; use a point for decimals and no thousands separator, e.g. 1234.56"
)
ERR_NUMBER_UNREADABLE = _("“%(value)s” is not a number")
ERR_NUMBER_GOT_BOOLEAN = _("expected a number, got a true/false value")
ERR_NOT_FINITE = _("must be a finite number")
ERR_TOO_MANY_DECIMALS = _("has more than %(n)s decimal places")
ERR_TOO_LARGE = _("is too large")
ERR_WHOLE_GOT_BOOLEAN = _("expected a whole number, got a true/false value")
ERR_NOT_WHOLE = _("“%(value)s” is not a whole number")
ERR_NEGATIVE = _("must be zero or more")
ERR_NOT_UUID = _("“%(value)s” is not a UUID such as 3c90c3cc-0d44-4b50-8888-8dd25736052a")
ERR_NOT_JSON_OBJECT_TEXT = _('is not valid JSON; write an object such as {"source": "legacy-crm"}')
ERR_NOT_JSON_OBJECT = _('must be a JSON object such as {"source": "legacy-crm"}')
ERR_NOT_BOOLEAN = _("“%(value)s” is not true or false (also 1 or 0, yes or no, sí or no)")


def is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _as_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        raise ContractError(ERR_TEXT_GOT_BOOLEAN)
    if isinstance(value, dict | list):
        raise ContractError(ERR_TEXT_GOT_JSON, type=type(value).__name__)
    return str(value).strip()


class TextWidget(Widget):
    """Free text; surrounding spaces dropped; ``max_length`` enforced."""

    def __init__(self, *, max_length: int, required: bool = False):
        super().__init__(coerce_to_string=False)
        self.max_length = max_length
        self.required = required

    def clean(self, value, row=None, **kwargs) -> str:
        if type(value) is str:  # the usual cell, read the quickest way
            text = value.strip()
        elif value is None:
            text = ""
        else:
            text = _as_text(value)
        if not text:
            if self.required:
                raise ContractError(ERR_VALUE_REQUIRED)
            return ""
        if len(text) > self.max_length:
            raise ContractError(ERR_TEXT_TOO_LONG, length=len(text), max=self.max_length)
        return text


class ChoiceWidget(Widget):
    """One of a list of values from settings, matched without regard to case."""

    def __init__(self, *, setting: str, upper: bool):
        super().__init__(coerce_to_string=False)
        self.setting = setting
        self.upper = upper

    def clean(self, value, row=None, **kwargs) -> str:
        if is_blank(value):
            return ""
        text = _as_text(value)
        allowed = list(getattr(settings, self.setting))
        wanted = text.upper() if self.upper else text.lower()
        if wanted not in allowed:
            raise ContractError(ERR_NOT_ONE_OF, value=text, allowed=", ".join(allowed))
        return wanted


class PeriodWidget(Widget):
    def __init__(self):
        super().__init__(coerce_to_string=False)

    def clean(self, value, row=None, **kwargs) -> str:
        from customers.models import Period

        if is_blank(value):
            raise ContractError(ERR_VALUE_REQUIRED)
        text = _as_text(value).lower()
        if text not in Period.values:
            raise ContractError(ERR_NOT_ONE_OF, value=text, allowed=", ".join(Period.values))
        return text


class DateTimeWidget(Widget):
    """ISO 8601 date-times and dates, stored as aware UTC datetimes.

    Read by the contract's own parser: any offset is converted to UTC, a date-time without
    one is read in the batch's time zone, a plain date ``2023-11-07`` is midnight UTC.
    Day-first or month-first forms such as ``31/12/2023`` are refused: they are ambiguous.
    With ``as_date`` (dates of birth) only the calendar date counts.
    """

    def __init__(self, *, time_zone: str = "UTC", as_date: bool = False):
        super().__init__(coerce_to_string=False)
        self.time_zone = zoneinfo.ZoneInfo(time_zone)
        self.as_date = as_date

    def clean(self, value, row=None, **kwargs) -> dt.datetime | None:
        from customers.contract import parse_datetime_value

        if is_blank(value):
            return None
        return parse_datetime_value(value, time_zone=self.time_zone, as_date=self.as_date)


def _decimal_text(text: str) -> Decimal:
    if not _PLAIN_DECIMAL.match(text):
        raise ContractError(ERR_NOT_A_NUMBER, value=text)
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already checked it
        raise ContractError(ERR_NUMBER_UNREADABLE, value=text) from None


class DecimalWidget(Widget):
    """A number kept exactly as written (``50.20`` stays 50.20, never 50.199999)."""

    def __init__(self, *, required: bool = False, max_digits: int, decimal_places: int):
        super().__init__(coerce_to_string=False)
        self.required = required
        self.max_digits = max_digits
        self.decimal_places = decimal_places

    def clean(self, value, row=None, **kwargs) -> Decimal | None:
        if type(value) is str:  # the usual cell, read the quickest way
            text = value.strip()
            if not text:
                return self._blank()
            number = _decimal_text(text)
        elif value is None:
            return self._blank()
        elif isinstance(value, bool):
            raise ContractError(ERR_NUMBER_GOT_BOOLEAN)
        elif isinstance(value, Decimal | int):
            number = Decimal(value)
        elif isinstance(value, float):
            number = Decimal(repr(value))
        else:
            number = _decimal_text(str(value).strip())
        if not number.is_finite():
            raise ContractError(ERR_NOT_FINITE)
        _sign, digits, exponent = number.as_tuple()
        if -exponent <= self.decimal_places and (
            len(digits) + exponent <= self.max_digits - self.decimal_places
        ):
            return number  # within both limits as written (trailing zeros and all)
        sign, digits, exponent = number.normalize().as_tuple()
        decimals = max(0, -exponent)
        whole_digits = max(0, len(digits) + exponent)
        if decimals > self.decimal_places:
            raise ContractError(ERR_TOO_MANY_DECIMALS, n=self.decimal_places)
        if whole_digits > self.max_digits - self.decimal_places:
            raise ContractError(ERR_TOO_LARGE)
        return number

    def _blank(self) -> None:
        if self.required:
            raise ContractError(ERR_VALUE_REQUIRED)
        return None


class NonNegativeIntegerWidget(Widget):
    def __init__(self):
        super().__init__(coerce_to_string=False)

    def clean(self, value, row=None, **kwargs) -> int | None:
        if is_blank(value):
            return None
        if isinstance(value, bool):
            raise ContractError(ERR_WHOLE_GOT_BOOLEAN)
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ContractError(ERR_NOT_WHOLE, value=str(value)) from None
        if number != number.to_integral_value():
            raise ContractError(ERR_NOT_WHOLE, value=str(value))
        if number < 0:
            raise ContractError(ERR_NEGATIVE)
        if number > 2_147_483_647:
            raise ContractError(ERR_TOO_LARGE)
        return int(number)


class UUIDWidget(Widget):
    def __init__(self, *, required: bool = False):
        super().__init__(coerce_to_string=False)
        self.required = required

    def clean(self, value, row=None, **kwargs) -> uuid.UUID | None:
        if is_blank(value):
            if self.required:
                raise ContractError(ERR_VALUE_REQUIRED)
            return None
        text = _as_text(value)
        try:
            return uuid.UUID(text)
        except ValueError:
            raise ContractError(ERR_NOT_UUID, value=text) from None


class JSONObjectWidget(Widget):
    """A JSON object, written in the cell as text (or given as an object in JSON files)."""

    def __init__(self):
        super().__init__(coerce_to_string=False)

    def clean(self, value, row=None, **kwargs) -> dict | None:
        if is_blank(value):
            return None
        if isinstance(value, dict):
            return metadata_check(value)
        metadata_text_check(str(value))
        try:
            parsed = json.loads(str(value))
        except (ValueError, RecursionError):
            # JSONDecodeError, an integer too long to convert, or nesting too deep to parse.
            raise ContractError(ERR_NOT_JSON_OBJECT_TEXT) from None
        if not isinstance(parsed, dict):
            raise ContractError(ERR_NOT_JSON_OBJECT)
        return metadata_check(parsed)


class CodeWidget(TextWidget):
    """A code from a list in settings (a transaction's ``type``, a payment method), kept as
    text: written in the list's own spelling when it matches one in any case (``redemption``
    is ``REDEMPTION``), else as it is. Whether it is one of the list is validation's
    question, as for a required field: the row can be stored either way. The list is also
    what a mapping offers for the file's own codes."""

    def __init__(self, *, setting: str, max_length: int):
        super().__init__(max_length=max_length)
        self.setting = setting
        self._listed: object = None
        self._spelling: dict[str, str] = {}

    def clean(self, value, row=None, **kwargs) -> str:
        text = super().clean(value)
        listed = getattr(settings, self.setting)
        if listed is not self._listed:  # read again when the setting changes
            self._spelling = {str(code).lower(): str(code) for code in listed}
            self._listed = listed
        return self._spelling.get(text.lower(), text)


# Text cells read as true or false (compared in lower case); a blank cell is absent.
TRUE_TEXTS = frozenset({"true", "t", "1", "yes", "y", "sí", "si"})
FALSE_TEXTS = frozenset({"false", "f", "0", "no", "n"})


class BooleanWidget(Widget):
    """True or false: ``true``/``false``, ``1``/``0``, ``yes``/``no``, ``sí``/``no`` in any
    case, or a spreadsheet's or JSON file's own true/false or 1/0."""

    choices = ["true", "false"]

    def __init__(self):
        super().__init__(coerce_to_string=False)

    def clean(self, value, row=None, **kwargs) -> bool | None:
        if is_blank(value):
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float | Decimal) and value in (0, 1):
            return bool(value)
        text = str(value).strip().lower()
        if text in TRUE_TEXTS:
            return True
        if text in FALSE_TEXTS:
            return False
        raise ContractError(ERR_NOT_BOOLEAN, value=str(value).strip())
