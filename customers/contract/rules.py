"""One rule per kind of value (text, email, date-time, choice, UUID, number, count, JSON
object), the context they read their settings from, and the checks of objects and lists
that the serializers and the compiled checker share."""

import json
import re
import uuid
import zoneinfo
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Context, Decimal, InvalidOperation, Rounded
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email

from customers.contract.bounds import metadata_check, metadata_text_check
from customers.contract.messages import (
    CHOICE_SETTINGS,
    ERR_CHOICE,
    ERR_COUNT,
    ERR_COUNT_MAX,
    ERR_DATETIME,
    ERR_DATETIME_UTC,
    ERR_DOB_MIDNIGHT,
    ERR_EMAIL,
    ERR_EMPTY,
    ERR_METADATA,
    ERR_NOT_LIST,
    ERR_NOT_OBJECT,
    ERR_NUMBER,
    ERR_NUMBER_DIGITS,
    ERR_NUMBER_TYPE,
    ERR_TEXT,
    ERR_TEXT_TOO_LONG,
    ERR_TOO_FEW,
    ERR_TOO_MANY,
    ERR_UNKNOWN_FIELD,
    ERR_UUID,
    INTEGER_DIGITS,
    MAX_COUNT,
    ContractError,
    shown_value,
)
from customers.models import AMOUNT_DECIMALS


# --- Context -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ContractContext:
    """The mode and the settings one validation runs with, read once when it starts."""

    strict: bool
    time_zone: tzinfo
    _lists: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _lookups: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def build(cls, *, strict: bool = False, time_zone: str | tzinfo = "UTC") -> "ContractContext":
        zone = time_zone if isinstance(time_zone, tzinfo) else zoneinfo.ZoneInfo(time_zone or "UTC")
        lists = {name: tuple(getattr(settings, name)) for name in CHOICE_SETTINGS}
        return cls(strict=bool(strict), time_zone=zone, _lists=lists)

    def setting_list(self, name: str) -> tuple[str, ...]:
        values = self._lists.get(name)
        if values is None:
            values = self._lists[name] = tuple(getattr(settings, name))
        return values

    def choice_lookup(self, name: str) -> dict[str, str]:
        """Accepted spelling -> the value sent: exact in strict mode, any case otherwise."""
        lookup = self._lookups.get(name)
        if lookup is None:
            values = self.setting_list(name)
            lookup = {v: v for v in values} if self.strict else {v.lower(): v for v in values}
            self._lookups[name] = lookup
        return lookup


# --- Date-times ----------------------------------------------------------------------------
_UTC_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z\Z")
_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?\Z"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_MIDNIGHT = time(0)


def format_datetime(value: datetime) -> str:
    """The contract's date-time text: ``2023-11-07T05:31:56Z``, microseconds only if any."""
    text = value.isoformat()
    if text.endswith("+00:00"):
        return text[:-6] + "Z"
    if value.utcoffset() is None:
        raise ValueError(f"{value!r} has no time zone")
    return value.astimezone(UTC).isoformat()[:-6] + "Z"


def parse_datetime_value(
    value: Any, *, time_zone: str | tzinfo = UTC, as_date: bool = False
) -> datetime:
    """Read a date-time the lenient way (files, nested JSON), as an aware UTC datetime.

    Any ISO 8601 offset is converted to UTC; without one the value is read in
    ``time_zone``; a plain date (``2023-11-07``) is midnight UTC. With ``as_date`` (dates
    of birth) only the calendar date as written counts: the result is its midnight UTC.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        return datetime.combine(value, _MIDNIGHT, UTC)
    elif isinstance(value, str) and _ISO.match(text := value.strip()):
        try:
            if _DATE.match(text):
                return datetime.combine(date.fromisoformat(text), _MIDNIGHT, UTC)
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ContractError(ERR_DATETIME, value=shown_value(value)) from None
    else:
        raise ContractError(ERR_DATETIME, value=shown_value(value))
    if as_date:
        return datetime.combine(parsed.date(), _MIDNIGHT, UTC)
    if parsed.utcoffset() is None:
        zone = time_zone if isinstance(time_zone, tzinfo) else zoneinfo.ZoneInfo(time_zone)
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


# --- Rules ---------------------------------------------------------------------------------
class Rule:
    """One field's rule: ``clean`` returns the value for staging or raises ContractError.

    Empty values (null, "", blanks) never reach a rule: the object around it deals with them.
    """

    def clean(self, value: Any, ctx: ContractContext) -> Any:
        raise NotImplementedError

    def represent(self, value: Any) -> Any:
        return value


@dataclass(frozen=True, slots=True)
class Text(Rule):
    max_length: int | None = None

    def clean(self, value: Any, ctx: ContractContext) -> str:
        if type(value) is not str:
            if ctx.strict or isinstance(value, bool) or not isinstance(value, int):
                raise ContractError(ERR_TEXT)
            value = str(value)
        elif not ctx.strict:
            value = value.strip()
        if self.max_length is not None and len(value) > self.max_length:
            raise ContractError(ERR_TEXT_TOO_LONG, max=self.max_length, length=len(value))
        return value


# Plain ASCII addresses: a subset of what Django's ``validate_email`` accepts (its host
# name labels, a letters-only top-level domain), checked in a fraction of its time.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@(?:(?!-)[A-Za-z0-9-]{1,63}(?<!-)\.)+[A-Za-z]{2,63}\Z"
)


def is_plain_email(value: str) -> bool:
    """Whether ``validate_email`` (at most 320 characters) surely accepts ``value``."""
    return len(value) <= 320 and _PLAIN_EMAIL.match(value) is not None


@dataclass(frozen=True, slots=True)
class Email(Rule):
    max_length: int = 254

    def clean(self, value: Any, ctx: ContractContext) -> str:
        if type(value) is not str:
            raise ContractError(ERR_TEXT)
        if not ctx.strict:
            value = value.strip()
        if len(value) > self.max_length:
            raise ContractError(ERR_TEXT_TOO_LONG, max=self.max_length, length=len(value))
        if not is_plain_email(value):
            try:
                validate_email(value)
            except DjangoValidationError:
                raise ContractError(ERR_EMAIL, value=shown_value(value)) from None
        return value


@dataclass(frozen=True, slots=True)
class DateTime(Rule):
    """A date-time; ``is_dob`` for dates of birth, sent at midnight UTC."""

    is_dob: bool = False

    def clean(self, value: Any, ctx: ContractContext) -> datetime:
        if not ctx.strict:
            return parse_datetime_value(value, time_zone=ctx.time_zone, as_date=self.is_dob)
        if type(value) is not str or not _UTC_Z.match(value):
            raise ContractError(ERR_DATETIME_UTC, value=shown_value(value))
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ContractError(ERR_DATETIME_UTC, value=shown_value(value)) from None
        if self.is_dob and parsed.time() != _MIDNIGHT:
            raise ContractError(ERR_DOB_MIDNIGHT, value=value)
        return parsed

    def represent(self, value: Any) -> str:
        return format_datetime(value)


@dataclass(frozen=True, slots=True)
class Choice(Rule):
    """One of the values listed in the setting ``setting``."""

    setting: str

    def clean(self, value: Any, ctx: ContractContext) -> str:
        if type(value) is str:
            found = ctx.choice_lookup(self.setting).get(
                value if ctx.strict else value.strip().lower()
            )
            if found is not None:
                return found
        choices = ", ".join(ctx.setting_list(self.setting))
        raise ContractError(ERR_CHOICE, value=shown_value(value), choices=choices)


CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)


@dataclass(frozen=True, slots=True)
class Uuid(Rule):
    def clean(self, value: Any, ctx: ContractContext) -> uuid.UUID:
        if isinstance(value, uuid.UUID):
            return value
        if type(value) is str:
            if ctx.strict:
                if CANONICAL_UUID.match(value):
                    return uuid.UUID(value)
            else:
                try:
                    return uuid.UUID(value.strip())
                except ValueError:
                    pass
        raise ContractError(ERR_UUID, value=shown_value(value))

    def represent(self, value: Any) -> str:
        return str(value)


_WIDE = Context(prec=64)
# Quantizing to the smallest amount in this context raises rather than drop any digit.
_EXACT = Context(prec=64, traps=[InvalidOperation, Rounded])
_SMALLEST_AMOUNT = Decimal(1).scaleb(-AMOUNT_DECIMALS)
_INTEGER_LIMIT = 10**INTEGER_DIGITS
_DIGITS = {"integer": INTEGER_DIGITS, "decimals": AMOUNT_DECIMALS}


def is_plain_amount(value: Any) -> bool:
    """Whether ``value`` is an ``int`` or a ``Decimal`` (at most ``AMOUNT_DECIMALS`` decimals
    written) that surely fits the staging columns: ``Number``'s quick yes."""
    kind = type(value)
    if kind is int:
        return -_INTEGER_LIMIT < value < _INTEGER_LIMIT
    if kind is not Decimal or not value.is_finite() or value.adjusted() >= INTEGER_DIGITS:
        return False
    try:
        _EXACT.quantize(value, _SMALLEST_AMOUNT)
    except (InvalidOperation, Rounded):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Number(Rule):
    """A JSON number the staging columns hold exactly (``AMOUNT_DIGITS`` digits, of which
    ``AMOUNT_DECIMALS`` after the point): a value they would round is refused."""

    def clean(self, value: Any, ctx: ContractContext) -> Decimal:
        if is_plain_amount(value):
            return _WIDE.normalize(value)
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, bool):
            raise _number_error(value, ctx)
        elif isinstance(value, int):
            number = Decimal(value)
        elif isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, str) and not ctx.strict:
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                raise ContractError(ERR_NUMBER, value=shown_value(value)) from None
        else:
            raise _number_error(value, ctx)
        if not number.is_finite():
            raise ContractError(ERR_NUMBER, value=shown_value(value))
        return _fitted(number, value)


def _number_error(value: Any, ctx: ContractContext) -> ContractError:
    """A value that is no number: strict mode asks for a JSON number, files for a number."""
    if ctx.strict:
        return ContractError(ERR_NUMBER_TYPE)
    return ContractError(ERR_NUMBER, value=shown_value(value))


def _fitted(number: Decimal, original: Any) -> Decimal:
    digits = number.as_tuple().digits
    if len(digits) <= _WIDE.prec:
        number = number.normalize(_WIDE)
        _, digits, exponent = number.as_tuple()
        decimals = -exponent if exponent < 0 else 0
        integer = max(len(digits) + exponent, 0)
        if decimals <= AMOUNT_DECIMALS and integer <= INTEGER_DIGITS:
            return number
    raise ContractError(ERR_NUMBER_DIGITS, value=shown_value(original), **_DIGITS)


@dataclass(frozen=True, slots=True)
class Count(Rule):
    """A whole number of 0 or more (``number_of_purchases``)."""

    def clean(self, value: Any, ctx: ContractContext) -> int:
        if type(value) is int:
            count = value
        elif ctx.strict or isinstance(value, bool) or not isinstance(value, Decimal | float | str):
            raise ContractError(ERR_COUNT, value=shown_value(value))
        else:
            try:
                if isinstance(value, Decimal):
                    number = value
                else:
                    number = Decimal(value.strip() if isinstance(value, str) else repr(value))
            except InvalidOperation:
                raise ContractError(ERR_COUNT, value=shown_value(value)) from None
            if not number.is_finite() or number != number.to_integral_value():
                raise ContractError(ERR_COUNT, value=shown_value(value))
            count = int(number)
        if count < 0:
            raise ContractError(ERR_COUNT, value=shown_value(value))
        if count > MAX_COUNT:
            raise ContractError(ERR_COUNT_MAX, value=shown_value(value), max=MAX_COUNT)
        return count


@dataclass(frozen=True, slots=True)
class JSONObject(Rule):
    """A free-form JSON object (``metadata``); in lenient mode also its JSON text."""

    def clean(self, value: Any, ctx: ContractContext) -> dict:
        if isinstance(value, dict):
            return metadata_check(value)
        if isinstance(value, str) and not ctx.strict:
            metadata_text_check(value)
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, dict):
                return metadata_check(parsed)
        raise ContractError(ERR_METADATA)


# --- Objects and lists: shared by the serializers and the compiled checker -------------------
def prepare_object(
    data: Any, known: Collection[str], ctx: ContractContext
) -> tuple[dict, dict[str, ContractError]]:
    """Sort an object's keys: unknown ones and (strict) empty values are errors; lenient
    empty values are dropped as absent. Raises ContractError when ``data`` is no object."""
    if not isinstance(data, Mapping):
        raise ContractError(ERR_NOT_OBJECT)
    prepared: dict = {}
    errors: dict[str, ContractError] = {}
    for key, value in data.items():
        if key not in known:
            errors[str(key)] = ContractError(ERR_UNKNOWN_FIELD, field=shown_value(str(key)))
        elif value is None or (type(value) is str and not value.strip()):
            if ctx.strict:
                errors[key] = ContractError(ERR_EMPTY)
        else:
            prepared[key] = value
    return prepared, errors


def check_list(data: Any, *, min_length: int | None, max_length: int | None) -> None:
    if not isinstance(data, list):
        raise ContractError(ERR_NOT_LIST)
    if min_length is not None and len(data) < min_length:
        raise ContractError(ERR_TOO_FEW, min=min_length, count=len(data))
    if max_length is not None and len(data) > max_length:
        raise ContractError(ERR_TOO_MANY, max=max_length, count=len(data))
