"""The endpoint's body as DRF serializers built from the rules, and ``problems_from_errors``
to read their errors as ``FieldProblem`` lists.

DRF keeps only an error's words (in the active language) and its code, so each serializer
tree notes the untranslated message of every error it raises (``error_detail``), by its
words; ``serializer_problems`` reads the problems with those messages, for what is stored.
"""

from collections.abc import Mapping
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.settings import api_settings

from console.messages import Message
from customers.contract.messages import (
    ERR_DUPLICATE_EMAIL,
    ERR_DUPLICATE_ID,
    ERR_EMPTY,
    ERR_NOT_OBJECT,
    ERR_REQUIRED,
    MAX_CUSTOMERS_PER_REQUEST,
    Code,
    ContractError,
    FieldProblem,
    shown_value,
)
from customers.contract.rules import (
    Choice,
    ContractContext,
    Count,
    DateTime,
    Email,
    JSONObject,
    Number,
    Rule,
    Text,
    Uuid,
    check_list,
    prepare_object,
)
from customers.models import (
    StagedBalance,
    StagedCustomer,
    StagedDevice,
)


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


def _max_length(model, name: str) -> int:
    return model._meta.get_field(name).max_length


# The messages DRF raises for our fields by their ``default_error_messages``.
_DEFAULT_MESSAGES = (ERR_REQUIRED, ERR_EMPTY, ERR_NOT_OBJECT)


def _messages(bound: serializers.Field) -> dict[str, Message]:
    """The untranslated messages of the errors raised in ``bound``'s tree, by their words."""
    root = bound.root
    found = root.__dict__.get("_contract_messages")
    if found is None:
        found = {str(message): Message.of(message) for message in _DEFAULT_MESSAGES}
        root.__dict__["_contract_messages"] = found
    return found


def error_detail(bound: serializers.Field, error: ContractError) -> list[ErrorDetail]:
    """``error`` as DRF's error detail, its untranslated message noted in ``bound``'s tree."""
    _messages(bound)[error.message] = error.untranslated
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
            raise serializers.ValidationError(error_detail(self, exc)) from exc

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
                {api_settings.NON_FIELD_ERRORS_KEY: error_detail(self, exc)}
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
                    item_errors[name] = error_detail(self, error)
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
                {api_settings.NON_FIELD_ERRORS_KEY: error_detail(self, exc)}
            ) from exc
        try:
            value = super().to_internal_value(prepared)
        except serializers.ValidationError as exc:
            errors = dict(exc.detail)
        else:
            errors = {}
        for name, error in prepare_errors.items():
            errors[name] = error_detail(self, error)
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
                        shown = shown_value(items[index][name])
                        found.setdefault(index, {})[name] = ContractError(
                            message, code, value=shown
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


def problems_from_errors(
    detail: Any, path: str = "", *, messages: Mapping[str, Message] | None = None
) -> list[FieldProblem]:
    """Flatten a serializer's ``errors`` into problems with paths like ``balance[0].amount``;
    each message untranslated when ``messages`` (by words) knows it, else as its words."""
    messages = messages or {}
    problems: list[FieldProblem] = []
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                sub = path
            elif isinstance(key, int):
                sub = f"{path}[{key}]"
            else:
                sub = f"{path}.{key}" if path else str(key)
            problems.extend(problems_from_errors(value, sub, messages=messages))
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            if isinstance(item, Mapping | list):
                problems.extend(problems_from_errors(item, f"{path}[{index}]", messages=messages))
            else:
                problems.append(_error_problem(path, item, messages))
    else:
        problems.append(_error_problem(path, detail, messages))
    return problems


def _error_problem(path: str, error: Any, messages: Mapping[str, Message]) -> FieldProblem:
    """One error detail as a problem. Words no contract rule wrote (DRF's own, already
    translated) are kept as they are."""
    text = str(error)
    code = _problem_code(getattr(error, "code", None))
    return FieldProblem(path, code, text, messages.get(text))


def serializer_problems(serializer: serializers.Serializer) -> list[FieldProblem]:
    """The problems of a contract serializer that ran ``is_valid()``, with their messages
    untranslated (as the tree noted them)."""
    return problems_from_errors(serializer.errors, messages=_messages(serializer))


def serializer_messages_fresh(serializer: serializers.Serializer) -> dict:
    """Where ``serializer``'s tree notes the untranslated messages of its errors, emptied
    of what an earlier run noted (a tree run on many values)."""
    serializer.root.__dict__.pop("_contract_messages", None)
    return _messages(serializer)
