"""Cell parsers for JSON values: an array or object written in a cell as JSON text (or given
as one in a JSON file), and a decimal stored inside a JSON document.

Used by the history's files, whose arrays and free-form objects (``order.products``,
``order.metadata``) are columns of JSON text, and whose other nested values are
assembled into one JSON document per row (``customers.resources.history``).
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from import_export.widgets import Widget

from console.messages import FileSize
from customers.contract.bounds import (
    METADATA_MAX_BYTES,
    METADATA_MAX_DEPTH,
    METADATA_MAX_TEXT_BYTES,
    json_depth,
)
from customers.contract.messages import ContractError

# Raised as ``ContractError``: the message is kept untranslated for a later reader.
ERR_NOT_JSON = _("is not valid JSON; write an array such as [] or an object such as {}")
ERR_NOT_ARRAY = _('must be a JSON array such as [{"sku": "SKU-1", "amount": 2}]')
ERR_NOT_OBJECT = _('must be a JSON object such as {"source": "legacy-crm"}')
ERR_NOT_ARRAY_OR_OBJECT = _('must be a JSON array or object, such as ["gift"] or {"a": 1}')
ERR_TOO_BIG = _("takes %(size)s written as JSON; at most %(max)s are accepted")
ERR_NOT_FINITE = _("holds a number that is not finite, such as NaN or 1e400")
ERR_UNSTORABLE = _("holds text that cannot be stored: a NUL character or half of a surrogate pair")
ERR_TOO_DEEP = _("is nested more than %(max)d levels deep")


def json_number(number: Decimal | None) -> int | float | None:
    """A decimal as a JSON document stores it: a whole number as an integer, any other as
    the nearest double. Exact for what ``DecimalWidget`` accepts: at most 15 significant
    digits, which a double always tells apart, so ``Decimal(repr(x))`` gives back the
    decimal as written (``12.50`` as ``12.5``)."""
    if number is None:
        return None
    if number == number.to_integral_value():
        return int(number)
    return float(number)


class _NotFinite(ValueError):
    """A JSON number Python reads as infinite (``1e400``), or ``NaN``/``Infinity``."""


def _refuse_constant(name: str):
    """``NaN``, ``Infinity`` and ``-Infinity``, which Python's reader takes but JSON has not."""
    raise _NotFinite(name)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotFinite(text)
    return number


# Readers made once: the usual one, and one that also checks every decimal number, used
# only for a text with a number that could be too large for a double (``1e400``, or a
# run of hundreds of digits).
_JSON = json.JSONDecoder(parse_constant=_refuse_constant)
_JSON_CHECKED = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_MAYBE_HUGE = re.compile(r"\d[eE]|\d{300}")

# A NUL character as compact JSON writes it (``\u0000``, not preceded by an escaped backslash).
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")

# Written back as compact JSON, a text is never more than this many times longer: only its
# numbers may grow (``1e15`` is written 1000000000000000.0).
_JSON_GROWTH = 5


class JSONValueWidget(Widget):
    """A JSON array or object, written in the cell as text (or given as one in JSON files):
    ``shape`` is ``"array"``, ``"object"`` or ``"any"`` (either). Bounded as ``metadata``
    is: nested at most ``METADATA_MAX_DEPTH`` levels, at most ``METADATA_MAX_BYTES`` as
    compact JSON. Numbers are JSON numbers (``NaN``, ``Infinity`` and numbers too large for
    a double are refused); so are texts a database cannot store (a NUL character, half of a
    surrogate pair).

    The usual cell (short text without ``\\u`` escapes) is within every bound however it is
    written back, so it is parsed once and not written back to be measured."""

    SHAPES = {"array": list, "object": dict, "any": list | dict}

    def __init__(self, *, shape: str):
        super().__init__(coerce_to_string=False)
        self.shape = shape
        self.expected = self.SHAPES[shape]

    def clean(self, value, row=None, **kwargs) -> list | dict | None:
        if type(value) is str:
            text = value.strip()
        elif value is None:
            return None
        elif isinstance(value, list | dict):
            return self._bounded(self._shaped(value))
        else:
            text = str(value).strip()
        if not text:
            return None
        try:
            size = len(text) if text.isascii() else len(text.encode())
        except UnicodeEncodeError:
            raise self._unstorable() from None
        if size > METADATA_MAX_TEXT_BYTES:
            raise self._size_error(size)
        try:
            reader = _JSON_CHECKED if _MAYBE_HUGE.search(text) else _JSON
            parsed, end = reader.raw_decode(text)
            if end != len(text):
                raise ValueError(text)  # more after the value
        except _NotFinite:
            raise self._not_finite() from None
        except (ValueError, RecursionError):
            raise ContractError(ERR_NOT_JSON) from None
        shaped = self._shaped(parsed)
        if (
            size * _JSON_GROWTH <= METADATA_MAX_BYTES
            and "\\u" not in text
            and text.count("{") + text.count("[") <= METADATA_MAX_DEPTH
        ):
            return shaped
        return self._bounded(shaped)

    def _shaped(self, value):
        if isinstance(value, self.expected):
            return value
        if self.shape == "array":
            raise ContractError(ERR_NOT_ARRAY)
        if self.shape == "object":
            raise ContractError(ERR_NOT_OBJECT)
        raise ContractError(ERR_NOT_ARRAY_OR_OBJECT)

    def _size_error(self, size: int) -> ValueError:
        return ContractError(ERR_TOO_BIG, size=FileSize(size), max=FileSize(METADATA_MAX_BYTES))

    def _not_finite(self) -> ValueError:
        return ContractError(ERR_NOT_FINITE)

    def _unstorable(self) -> ValueError:
        return ContractError(ERR_UNSTORABLE)

    def _bounded(self, value: list | dict) -> list | dict:
        try:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except RecursionError:
            text = None
        except ValueError:
            raise self._not_finite() from None
        if text is not None:
            if _NUL_ESCAPE.search(text):
                raise self._unstorable()
            try:
                size = len(text.encode())
            except UnicodeEncodeError:
                raise self._unstorable() from None
            if size > METADATA_MAX_BYTES:
                raise self._size_error(size)
        if text is None or (
            text.count("{") + text.count("[") > METADATA_MAX_DEPTH
            and json_depth(value, stop_after=METADATA_MAX_DEPTH) > METADATA_MAX_DEPTH
        ):
            raise ContractError(ERR_TOO_DEEP, max=METADATA_MAX_DEPTH)
        return value
