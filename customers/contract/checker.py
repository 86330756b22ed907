"""The serializers compiled into plain functions, for checking many customers quickly."""

from datetime import tzinfo
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from customers.contract.messages import (
    ERR_REQUIRED,
    Code,
    ContractError,
    FieldProblem,
)
from customers.contract.rules import (
    ContractContext,
    Rule,
    check_list,
    prepare_object,
)
from customers.contract.serializers import (
    ContractListSerializer,
    ContractSerializer,
    CustomerSerializer,
    MigrateRequestSerializer,
    RuleField,
)

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
