"""The body of ``POST /customers/migrate`` (CONTRACT.md) as DRF serializers.

The single source of truth for what Masivo takes, used by batch validation, by the nested
JSON import (``{"customers": [...]}`` files) and by the sandbox that stands in for Masivo.

Two modes, chosen by the serializer context:

- **strict** (``context={"strict": True}``): the body exactly as the console sends it.
  Date-times in UTC with a ``Z`` suffix, JSON numbers (not text), no ``null`` or ``""``.
- **lenient** (the default): values read from files. Any ISO 8601 offset is converted to
  UTC; a date-time without an offset is read in ``context["time_zone"]`` (default UTC); a
  plain date means midnight UTC; numbers may be text; ``null`` and ``""`` mean absent.

Enum lists and the required fields beyond ``id`` are read from settings when validation
runs (``MASIVO_GENDERS``, ``MASIVO_STATUSES``, ``MASIVO_DEVICE_PLATFORMS``,
``MASIVO_REQUIRED_FIELDS``).

``validated_data`` keeps the body's keys (``id``, ``balance``, ``metrics.lifetime.from``,
``device_info.osVersion``, ...) with values ready for staging: date-times aware and in UTC,
numbers ``Decimal``, reward and tier ids ``uuid.UUID``; absent values are left out.

Every rule lives in one small rule object (``Text``, ``Email``, ``DateTime``, ...) that
raises ``ContractError`` with one of the message constants below. The serializers wrap the
rules in ``RuleField``; ``Checker`` compiles the same serializers into plain functions for
checking many customers quickly (batch validation, the sandbox). Both report the same
problems; ``problems_from_errors`` flattens a serializer's errors into the checker's form
(paths such as ``balance[0].amount``).
"""

import json
import re
import uuid
import zoneinfo
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Context, Decimal, InvalidOperation
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.settings import api_settings

from customers.models import (
    AMOUNT_DECIMALS,
    AMOUNT_DIGITS,
    CustomerProblem,
    Period,
    StagedBalance,
    StagedCustomer,
    StagedDevice,
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

_SHOWN_MAX = 80


def _shown(value: Any) -> str:
    """A value as quoted in a message: text as is, shortened when long."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, int | float | Decimal):
        text = str(value)
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 1] + "…"


class ContractError(ValueError):
    """A value breaks a contract rule. A ``ValueError``, so import widgets can raise it."""

    def __init__(self, message: Any, code: str = Code.INVALID.value):
        self.message = str(message)
        self.code = code
        super().__init__(self.message)


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One broken rule: where (``balance[0].amount``), what kind (a ``CustomerProblem.Code``
    value) and a sentence for the operator."""

    field: str
    code: str
    message: str


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


def contract_context(bound: serializers.Field) -> ContractContext:
    """The context of the serializer tree ``bound`` belongs to, built once per tree."""
    root = bound.root
    ctx = root.__dict__.get("_contract_context")
    if ctx is None:
        options = getattr(root, "_context", {}) or {}
        ctx = ContractContext.build(
            strict=options.get("strict", False), time_zone=options.get("time_zone") or "UTC"
        )
        root.__dict__["_contract_context"] = ctx
    return ctx


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
            raise ContractError(ERR_DATETIME % {"value": _shown(value)}) from None
    else:
        raise ContractError(ERR_DATETIME % {"value": _shown(value)})
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
            raise ContractError(ERR_TEXT_TOO_LONG % {"max": self.max_length, "length": len(value)})
        return value


@dataclass(frozen=True, slots=True)
class Email(Rule):
    max_length: int = 254

    def clean(self, value: Any, ctx: ContractContext) -> str:
        if type(value) is not str:
            raise ContractError(ERR_TEXT)
        if not ctx.strict:
            value = value.strip()
        if len(value) > self.max_length:
            raise ContractError(ERR_TEXT_TOO_LONG % {"max": self.max_length, "length": len(value)})
        try:
            validate_email(value)
        except DjangoValidationError:
            raise ContractError(ERR_EMAIL % {"value": _shown(value)}) from None
        return value


@dataclass(frozen=True, slots=True)
class DateTime(Rule):
    """A date-time; ``is_dob`` for dates of birth, sent at midnight UTC."""

    is_dob: bool = False

    def clean(self, value: Any, ctx: ContractContext) -> datetime:
        if not ctx.strict:
            return parse_datetime_value(value, time_zone=ctx.time_zone, as_date=self.is_dob)
        if type(value) is not str or not _UTC_Z.match(value):
            raise ContractError(ERR_DATETIME_UTC % {"value": _shown(value)})
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ContractError(ERR_DATETIME_UTC % {"value": _shown(value)}) from None
        if self.is_dob and parsed.time() != _MIDNIGHT:
            raise ContractError(ERR_DOB_MIDNIGHT % {"value": value})
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
        raise ContractError(
            ERR_CHOICE
            % {"value": _shown(value), "choices": ", ".join(ctx.setting_list(self.setting))}
        )


_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)


@dataclass(frozen=True, slots=True)
class Uuid(Rule):
    def clean(self, value: Any, ctx: ContractContext) -> uuid.UUID:
        if isinstance(value, uuid.UUID):
            return value
        if type(value) is str:
            if ctx.strict:
                if _CANONICAL_UUID.match(value):
                    return uuid.UUID(value)
            else:
                try:
                    return uuid.UUID(value.strip())
                except ValueError:
                    pass
        raise ContractError(ERR_UUID % {"value": _shown(value)})

    def represent(self, value: Any) -> str:
        return str(value)


_WIDE = Context(prec=64)


@dataclass(frozen=True, slots=True)
class Number(Rule):
    """A JSON number the staging columns hold exactly (``AMOUNT_DIGITS`` digits, of which
    ``AMOUNT_DECIMALS`` after the point): a value they would round is refused."""

    def clean(self, value: Any, ctx: ContractContext) -> Decimal:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, bool):
            raise ContractError(
                ERR_NUMBER_TYPE if ctx.strict else ERR_NUMBER % {"value": _shown(value)}
            )
        elif isinstance(value, int):
            number = Decimal(value)
        elif isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, str) and not ctx.strict:
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                raise ContractError(ERR_NUMBER % {"value": _shown(value)}) from None
        else:
            raise ContractError(
                ERR_NUMBER_TYPE if ctx.strict else ERR_NUMBER % {"value": _shown(value)}
            )
        if not number.is_finite():
            raise ContractError(ERR_NUMBER % {"value": _shown(value)})
        return _fitted(number, value)


def _fitted(number: Decimal, original: Any) -> Decimal:
    digits = number.as_tuple().digits
    if len(digits) <= _WIDE.prec:
        number = number.normalize(_WIDE)
        _, digits, exponent = number.as_tuple()
        decimals = -exponent if exponent < 0 else 0
        integer = max(len(digits) + exponent, 0)
        if decimals <= AMOUNT_DECIMALS and integer <= INTEGER_DIGITS:
            return number
    raise ContractError(
        ERR_NUMBER_DIGITS
        % {"value": _shown(original), "integer": INTEGER_DIGITS, "decimals": AMOUNT_DECIMALS}
    )


@dataclass(frozen=True, slots=True)
class Count(Rule):
    """A whole number of 0 or more (``number_of_purchases``)."""

    def clean(self, value: Any, ctx: ContractContext) -> int:
        if type(value) is int:
            count = value
        elif ctx.strict or isinstance(value, bool) or not isinstance(value, Decimal | float | str):
            raise ContractError(ERR_COUNT % {"value": _shown(value)})
        else:
            try:
                if isinstance(value, Decimal):
                    number = value
                else:
                    number = Decimal(value.strip() if isinstance(value, str) else repr(value))
            except InvalidOperation:
                raise ContractError(ERR_COUNT % {"value": _shown(value)}) from None
            if not number.is_finite() or number != number.to_integral_value():
                raise ContractError(ERR_COUNT % {"value": _shown(value)})
            count = int(number)
        if count < 0:
            raise ContractError(ERR_COUNT % {"value": _shown(value)})
        if count > MAX_COUNT:
            raise ContractError(ERR_COUNT_MAX % {"value": _shown(value), "max": MAX_COUNT})
        return count


@dataclass(frozen=True, slots=True)
class JSONObject(Rule):
    """A free-form JSON object (``metadata``); in lenient mode also its JSON text."""

    def clean(self, value: Any, ctx: ContractContext) -> dict:
        if isinstance(value, dict):
            return value
        if isinstance(value, str) and not ctx.strict:
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                return parsed
        raise ContractError(ERR_METADATA)


def _max_length(model, name: str) -> int:
    return model._meta.get_field(name).max_length


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
            errors[str(key)] = ContractError(ERR_UNKNOWN_FIELD % {"field": _shown(str(key))})
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
        raise ContractError(ERR_TOO_FEW % {"min": min_length, "count": len(data)})
    if max_length is not None and len(data) > max_length:
        raise ContractError(ERR_TOO_MANY % {"max": max_length, "count": len(data)})


def _detail(error: ContractError) -> list[ErrorDetail]:
    return [ErrorDetail(error.message, code=error.code)]


class RuleField(serializers.Field):
    """A serializer field whose whole behaviour is one ``Rule``."""

    default_error_messages = {"required": ERR_REQUIRED, "null": ERR_EMPTY}

    def __init__(self, rule: Rule, **kwargs):
        self.rule = rule
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        try:
            return self.rule.clean(data, contract_context(self))
        except ContractError as exc:
            raise serializers.ValidationError(exc.message, code=exc.code) from exc

    def to_representation(self, value: Any) -> Any:
        return self.rule.represent(value)


class ContractListSerializer(serializers.ListSerializer):
    """A list of contract objects; errors keyed by index (DRF's dictionary format)."""

    default_error_messages = {"required": ERR_REQUIRED, "null": ERR_EMPTY}

    def to_internal_value(self, data: Any) -> list:
        """Like DRF's, plus the duplicate check; errors come keyed by index, as a dict or a
        list per ``REST_FRAMEWORK["LIST_SERIALIZER_ERRORS_AS_DICT"]``."""
        try:
            check_list(data, min_length=self.min_length, max_length=self.max_length)
        except ContractError as exc:
            raise serializers.ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: _detail(exc)}
            ) from exc
        validated: list = []
        errors: dict[int, Any] = {}
        for index, item in enumerate(data):
            try:
                validated.append(self.child.run_validation(item))
            except serializers.ValidationError as exc:
                errors[index] = exc.detail
        for index, found in self.child.find_duplicates(data, contract_context(self)).items():
            item_errors = errors.setdefault(index, {})
            if isinstance(item_errors, dict):
                for name, error in found.items():
                    item_errors[name] = _detail(error)
        if errors and not api_settings.LIST_SERIALIZER_ERRORS_AS_DICT:
            errors = [errors.get(index, {}) for index in range(len(data))]
        if errors:
            raise serializers.ValidationError(errors)
        return validated


class ContractSerializer(serializers.Serializer):
    """An object of the contract: unknown keys refused, empty values per the mode, required
    fields from ``always_required`` plus, when set, the list in ``required_setting``."""

    always_required: ClassVar[tuple[str, ...]] = ()
    required_setting: ClassVar[str | None] = None

    default_error_messages = {
        "required": ERR_REQUIRED,
        "null": ERR_NOT_OBJECT,
        "invalid": ERR_NOT_OBJECT,
    }

    class Meta:
        list_serializer_class = ContractListSerializer

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        required = set(self.always_required)
        if self.required_setting:
            required.update(getattr(settings, self.required_setting))
        unknown = required - fields.keys()
        if unknown:
            raise ImproperlyConfigured(
                f"{self.required_setting} names {sorted(unknown)}, which "
                f"{type(self).__name__} does not have."
            )
        for name in required:
            fields[name].required = True
        return fields

    def to_internal_value(self, data: Any) -> dict:
        try:
            prepared, prepare_errors = prepare_object(data, self.fields, contract_context(self))
        except ContractError as exc:
            raise serializers.ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: _detail(exc)}
            ) from exc
        try:
            value = super().to_internal_value(prepared)
        except serializers.ValidationError as exc:
            errors = dict(exc.detail)
        else:
            errors = {}
        for name, error in prepare_errors.items():
            errors[name] = _detail(error)
        if errors:
            raise serializers.ValidationError(errors)
        return value

    @classmethod
    def find_duplicates(
        cls, items: list, ctx: ContractContext
    ) -> dict[int, dict[str, ContractError]]:
        """Errors for entries of a list of these objects that repeat a unique value."""
        return {}


# --- The body --------------------------------------------------------------------------------
def _text(model, name: str) -> RuleField:
    return RuleField(Text(_max_length(model, name)))


class DeviceInfoSerializer(ContractSerializer):
    platform = RuleField(Choice("MASIVO_DEVICE_PLATFORMS"))
    model = _text(StagedDevice, "model")
    osVersion = RuleField(Text(_max_length(StagedDevice, "os_version")))  # noqa: N815


class DeviceSerializer(ContractSerializer):
    always_required = ("device_token",)

    device_token = _text(StagedDevice, "device_token")
    device_info = DeviceInfoSerializer(required=False)
    expires_at = RuleField(DateTime())
    created_at = RuleField(DateTime())


class BalanceSerializer(ContractSerializer):
    always_required = ("reward_id", "amount")

    reward_id = RuleField(Uuid())
    amount = RuleField(Number())
    expiration_date = RuleField(DateTime())
    brand_id = _text(StagedBalance, "brand_id")
    channel_id = _text(StagedBalance, "channel_id")
    store_id = _text(StagedBalance, "store_id")
    issued_at = RuleField(DateTime())
    funded_by = _text(StagedBalance, "funded_by")


class MetricsPeriodSerializer(ContractSerializer):
    """One period of ``metrics``; ``from`` and ``to`` are Python keywords, so they are
    added in ``get_fields``."""

    tier_id = RuleField(Uuid())
    last_visit = RuleField(DateTime())
    last_session = RuleField(DateTime())
    spend_total = RuleField(Number())
    number_of_purchases = RuleField(Count())

    def get_fields(self) -> dict[str, serializers.Field]:
        fields: dict[str, serializers.Field] = {
            "from": RuleField(DateTime()),
            "to": RuleField(DateTime()),
        }
        fields.update(super().get_fields())
        return fields


class MetricsSerializer(ContractSerializer):
    """``metrics``: any subset of the periods plus ``updated_at``."""

    lifetime = MetricsPeriodSerializer(required=False)
    last_year = MetricsPeriodSerializer(required=False)
    this_year = MetricsPeriodSerializer(required=False)
    last_month = MetricsPeriodSerializer(required=False)
    this_month = MetricsPeriodSerializer(required=False)
    last_quarter = MetricsPeriodSerializer(required=False)
    this_quarter = MetricsPeriodSerializer(required=False)
    last_semester = MetricsPeriodSerializer(required=False)
    this_semester = MetricsPeriodSerializer(required=False)
    updated_at = RuleField(DateTime())


class CustomerSerializer(ContractSerializer):
    always_required = ("id",)
    required_setting = "MASIVO_REQUIRED_FIELDS"

    id = RuleField(Text(_max_length(StagedCustomer, "legacy_id")))
    name = _text(StagedCustomer, "name")
    email = RuleField(Email(_max_length(StagedCustomer, "email")))
    gender = RuleField(Choice("MASIVO_GENDERS"))
    dob = RuleField(DateTime(is_dob=True))
    registration_date = RuleField(DateTime())
    status = RuleField(Choice("MASIVO_STATUSES"))
    document_type = _text(StagedCustomer, "document_type")
    document_number = _text(StagedCustomer, "document_number")
    country = _text(StagedCustomer, "country")
    metadata = RuleField(JSONObject())
    metrics = MetricsSerializer(required=False)
    balance = BalanceSerializer(many=True, required=False)
    devices = DeviceSerializer(many=True, required=False)

    @classmethod
    def find_duplicates(
        cls, items: list, ctx: ContractContext
    ) -> dict[int, dict[str, ContractError]]:
        """The same ``id`` twice in one request; in strict mode also the same email in any
        case (the nested import leaves emails to batch validation, which names the rows)."""
        found: dict[int, dict[str, ContractError]] = {}
        keys = [("id", Code.DUPLICATE_ID.value, ERR_DUPLICATE_ID)]
        if ctx.strict:
            keys.append(("email", Code.DUPLICATE_EMAIL.value, ERR_DUPLICATE_EMAIL))
        for name, code, message in keys:
            seen: dict[str, list[int]] = {}
            for index, item in enumerate(items):
                value = item.get(name) if isinstance(item, Mapping) else None
                if isinstance(value, str) and value.strip():
                    key = value if ctx.strict else value.strip()
                    seen.setdefault(key.lower() if name == "email" else key, []).append(index)
            for indexes in seen.values():
                if len(indexes) > 1:
                    for index in indexes:
                        shown = _shown(items[index][name])
                        found.setdefault(index, {})[name] = ContractError(
                            message % {"value": shown}, code
                        )
        return found


class MigrateRequestSerializer(ContractSerializer):
    """The whole body: ``{"customers": [...]}`` with 1 to 1000 customers."""

    always_required = ("customers",)

    customers = CustomerSerializer(many=True, min_length=1, max_length=MAX_CUSTOMERS_PER_REQUEST)


# --- Reading DRF errors ----------------------------------------------------------------------
_CODES = frozenset(Code.values)


def _problem_code(code: str | None) -> str:
    return code if code in _CODES else Code.INVALID.value


def problems_from_errors(detail: Any, path: str = "") -> list[FieldProblem]:
    """Flatten a serializer's ``errors`` into problems with paths like ``balance[0].amount``."""
    problems: list[FieldProblem] = []
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                sub = path
            elif isinstance(key, int):
                sub = f"{path}[{key}]"
            else:
                sub = f"{path}.{key}" if path else str(key)
            problems.extend(problems_from_errors(value, sub))
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            if isinstance(item, Mapping | list):
                problems.extend(problems_from_errors(item, f"{path}[{index}]"))
            else:
                problems.append(
                    FieldProblem(path, _problem_code(getattr(item, "code", None)), str(item))
                )
    else:
        problems.append(
            FieldProblem(path, _problem_code(getattr(detail, "code", None)), str(detail))
        )
    return problems


# --- The compiled checker --------------------------------------------------------------------
_FAILED = object()


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _ObjectNode:
    """A ContractSerializer compiled to a loop over the keys it is given."""

    __slots__ = ("known", "fields", "required", "find_duplicates")

    def __init__(self, serializer: ContractSerializer):
        self.find_duplicates = serializer.find_duplicates
        self.fields: dict[str, Any] = {}  # name -> its rule, or a nested node
        for name, bound in serializer.fields.items():
            if bound.source != name:
                raise ImproperlyConfigured(f"{name}: contract fields keep their own name")
            if isinstance(bound, RuleField):
                self.fields[name] = bound.rule
            elif isinstance(bound, ContractListSerializer):
                self.fields[name] = _ListNode(bound)
            elif isinstance(bound, ContractSerializer):
                self.fields[name] = _ObjectNode(bound)
            else:
                raise ImproperlyConfigured(
                    f"{name}: {type(bound).__name__} is not a contract field"
                )
        self.known = frozenset(self.fields)
        self.required = tuple(name for name, bound in serializer.fields.items() if bound.required)

    def run(self, data: Any, ctx: ContractContext, path: str, problems: list) -> Any:
        try:
            prepared, errors = prepare_object(data, self.known, ctx)
        except ContractError as exc:
            problems.append(FieldProblem(path, exc.code, exc.message))
            return _FAILED
        value: dict = {}
        failed = False
        for name, given in prepared.items():
            node = self.fields[name]
            if isinstance(node, Rule):
                try:
                    value[name] = node.clean(given, ctx)
                except ContractError as exc:
                    problems.append(FieldProblem(_join(path, name), exc.code, exc.message))
                    failed = True
            else:
                result = node.run(given, ctx, _join(path, name), problems)
                if result is _FAILED:
                    failed = True
                else:
                    value[name] = result
        for name in self.required:
            if name not in prepared and name not in errors:
                problems.append(
                    FieldProblem(_join(path, name), Code.REQUIRED.value, str(ERR_REQUIRED))
                )
                failed = True
        for name, error in errors.items():
            problems.append(FieldProblem(_join(path, name), error.code, error.message))
            failed = True
        return _FAILED if failed else value


class _ListNode:
    __slots__ = ("child", "min_length", "max_length")

    def __init__(self, serializer: ContractListSerializer):
        self.child = _ObjectNode(serializer.child)
        self.min_length = serializer.min_length
        self.max_length = serializer.max_length

    def run(self, data: Any, ctx: ContractContext, path: str, problems: list) -> Any:
        try:
            check_list(data, min_length=self.min_length, max_length=self.max_length)
        except ContractError as exc:
            problems.append(FieldProblem(path, exc.code, exc.message))
            return _FAILED
        value = []
        failed = False
        for index, item in enumerate(data):
            result = self.child.run(item, ctx, f"{path}[{index}]", problems)
            if result is _FAILED:
                failed = True
            else:
                value.append(result)
        for index, found in self.child.find_duplicates(data, ctx).items():
            for name, error in found.items():
                problems.append(FieldProblem(f"{path}[{index}].{name}", error.code, error.message))
                failed = True
        return _FAILED if failed else value


class Checker:
    """A contract serializer compiled into plain functions, for checking many objects fast.

    Same fields, rules and messages as the serializer (it is built from one),
    without DRF's per-field machinery. Settings are read once, when the checker is built::

        checker = Checker(CustomerSerializer, strict=True)
        problems = checker.check(payload)    # [] when the customer is fine
    """

    def __init__(
        self,
        serializer_class: type[ContractSerializer] = CustomerSerializer,
        *,
        strict: bool = True,
        time_zone: str | tzinfo = "UTC",
    ):
        self.ctx = ContractContext.build(strict=strict, time_zone=time_zone)
        self._root = _ObjectNode(serializer_class())

    def clean(self, data: Any) -> tuple[dict | None, list[FieldProblem]]:
        """``(validated_data, [])`` or ``(None, problems)``."""
        problems: list[FieldProblem] = []
        value = self._root.run(data, self.ctx, "", problems)
        return (None if value is _FAILED else value), problems

    def check(self, data: Any) -> list[FieldProblem]:
        return self.clean(data)[1]


def customer_checker(*, strict: bool = True, time_zone: str | tzinfo = "UTC") -> Checker:
    return Checker(CustomerSerializer, strict=strict, time_zone=time_zone)


def request_checker(*, strict: bool = True, time_zone: str | tzinfo = "UTC") -> Checker:
    """Checks a whole ``{"customers": [...]}`` body; paths read ``customers[3].email``."""
    return Checker(MigrateRequestSerializer, strict=strict, time_zone=time_zone)
