"""The serializers compiled into plain functions, for checking many customers quickly.

A ``ContractSerializer`` becomes an ``_ObjectNode``, a ``ContractListSerializer`` a
``_ListNode`` and each ``Rule`` a function of the value alone (``_compile_rule``). In strict
mode the common rules get a fast path that accepts the usual valid value and hands anything
else to ``Rule.clean``, so values, problems and messages stay the rule's own.

Each node runs two ways. ``plain`` is all or nothing: it builds the value of a plainly valid
object and raises one of ``_NOT_PLAIN`` at the first thing it does not accept, without a
word on why. ``run`` walks carefully and reports every problem in the serializer's order;
the checker runs it only when ``plain`` gives up. ``Checker.check`` uses a second tree,
compiled *check only*: it builds no values (no dicts, UUIDs or decimals), it only looks.
"""

import re
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, time, tzinfo
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from customers.contract.bounds import metadata_check
from customers.contract.messages import (
    ERR_REQUIRED,
    MAX_COUNT,
    Code,
    ContractError,
    FieldProblem,
)
from customers.contract.rules import (
    CANONICAL_UUID,
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
    is_plain_amount,
    is_plain_email,
    prepare_object,
)
from customers.contract.serializers import (
    ContractListSerializer,
    ContractSerializer,
    CustomerSerializer,
    MigrateRequestSerializer,
    RuleField,
)

# --- Rules compiled for one mode -------------------------------------------------------------
Clean = Callable[[Any], Any]
"""A rule with its context fixed: the cleaned value (compiled check only, perhaps the value
as given) or ContractError; _EmptyValue for null, "" or blanks, which ``run`` sorts out
first (``prepare_object``) and ``plain`` gives up on."""


class _EmptyValue(Exception):
    """A compiled rule was given an empty value: the object around it decides."""


class _NotPlain(Exception):
    """``plain`` met something it does not accept as it is: ``run`` will say what."""


# What ``plain`` may raise; an unknown key is a KeyError from the dict of fields.
_NOT_PLAIN = (_NotPlain, KeyError, ContractError, _EmptyValue)


def _is_empty(value: Any) -> bool:
    """null, "" or blanks (``not value.strip()``, without building the stripped text)."""
    return value is None or (type(value) is str and (not value or value.isspace()))


# The fast paths: each accepts only values that are not empty, and returns what
# ``rule.clean`` would; anything else goes to ``slow``.
def _text(rule: Text, slow: Clean, ctx: ContractContext, check_only: bool) -> Clean:
    max_length = sys.maxsize if rule.max_length is None else rule.max_length

    def clean(value: Any) -> Any:
        if type(value) is str and 0 < len(value) <= max_length and not value.isspace():
            return value
        return slow(value)

    return clean


def _email(rule: Email, slow: Clean, ctx: ContractContext, check_only: bool) -> Clean:
    max_length = rule.max_length

    def clean(value: Any) -> Any:
        if type(value) is str and len(value) <= max_length and is_plain_email(value):
            return value
        return slow(value)

    return clean


# The usual shape of a contract date-time (ASCII digits, no fraction): quicker to match.
_PLAIN_UTC_Z = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")
_MIDNIGHT = time(0)


def _datetime(rule: DateTime, slow: Clean, ctx: ContractContext, check_only: bool) -> Clean:
    is_dob = rule.is_dob
    match = _PLAIN_UTC_Z.match
    parse = datetime.fromisoformat

    def clean(value: Any) -> Any:
        if type(value) is str and match(value):
            try:
                parsed = parse(value)
            except ValueError:
                parsed = None
            if parsed is not None and (not is_dob or parsed.time() == _MIDNIGHT):
                return parsed
        return slow(value)

    return clean


def _choice(rule: Choice, slow: Clean, ctx: ContractContext, check_only: bool) -> Clean:
    lookup = ctx.choice_lookup(rule.setting)
    if any(_is_empty(choice) for choice in lookup):
        return slow  # a blank choice in the setting is still an empty value

    def clean(value: Any) -> Any:
        found = lookup.get(value) if type(value) is str else None
        return slow(value) if found is None else found

    return clean


def _uuid(rule: Uuid, slow: Clean, ctx: ContractContext, check_only: bool) -> Clean:
    match = CANONICAL_UUID.match

    def clean(value: Any) -> Any:
        if type(value) is str and match(value):
            return value if check_only else uuid.UUID(value)
        return slow(value)

    return clean


def _number(rule: Number, slow: Clean, ctx: ContractContext, check_only: bool) -> Clean:
    if not check_only:
        return slow  # Number.clean starts with the same quick yes, then builds the Decimal

    def clean(value: Any) -> Any:
        return value if is_plain_amount(value) else slow(value)

    return clean


def _count(rule: Count, slow: Clean, ctx: ContractContext, check_only: bool) -> Clean:
    def clean(value: Any) -> Any:
        return value if type(value) is int and 0 <= value <= MAX_COUNT else slow(value)

    return clean


def _json_object(rule: JSONObject, slow: Clean, ctx: ContractContext, check_only: bool) -> Clean:
    def clean(value: Any) -> Any:
        return metadata_check(value) if type(value) is dict else slow(value)

    return clean


# By exact type: a subclass may clean differently, so it keeps its own ``clean``.
_STRICT_FAST_PATHS: dict[type[Rule], Callable[..., Clean]] = {
    Text: _text,
    Email: _email,
    DateTime: _datetime,
    Choice: _choice,
    Uuid: _uuid,
    Number: _number,
    Count: _count,
    JSONObject: _json_object,
}


def _compile_rule(rule: Rule, ctx: ContractContext, *, check_only: bool) -> Clean:
    """``rule.clean`` with ``ctx`` fixed and empty values refused; in strict mode with its
    rule's fast path, if it has one."""

    def slow(value: Any) -> Any:
        if _is_empty(value):
            raise _EmptyValue
        return rule.clean(value, ctx)

    fast_path = _STRICT_FAST_PATHS.get(type(rule)) if ctx.strict else None
    return slow if fast_path is None else fast_path(rule, slow, ctx, check_only)


# --- The compiled checker --------------------------------------------------------------------
_FAILED = object()


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _problem(path: str, error: ContractError) -> FieldProblem:
    return FieldProblem(path, error.code, error.message, error.untranslated)


class _ObjectNode:
    """A ContractSerializer compiled to a loop over the keys it is given.

    ``run`` reports problems as the serializer does: the fields' own in the order of the
    keys, then the missing required fields, then unknown keys and (strict) empty values.
    """

    __slots__ = ("rules", "nodes", "plain_fields", "required", "ctx", "check_only")

    def __init__(self, serializer: ContractSerializer, ctx: ContractContext, *, check_only: bool):
        self.ctx = ctx
        self.check_only = check_only
        self.rules: dict[str, Clean] = {}
        self.nodes: dict[str, _ObjectNode | _ListNode] = {}
        for name, bound in serializer.fields.items():
            if bound.source != name:
                raise ImproperlyConfigured(f"{name}: contract fields keep their own name")
            if isinstance(bound, RuleField):
                self.rules[name] = _compile_rule(bound.rule, ctx, check_only=check_only)
            elif isinstance(bound, ContractListSerializer):
                self.nodes[name] = _ListNode(bound, ctx, check_only=check_only)
            elif isinstance(bound, ContractSerializer):
                self.nodes[name] = _ObjectNode(bound, ctx, check_only=check_only)
            else:
                raise ImproperlyConfigured(
                    f"{name}: {type(bound).__name__} is not a contract field"
                )
        self.plain_fields: dict[str, Clean] = {
            **self.rules,
            **{name: node.plain for name, node in self.nodes.items()},
        }
        self.required = tuple(name for name, bound in serializer.fields.items() if bound.required)

    def plain(self, data: Any) -> dict | None:
        """The value of a plainly valid object (None, compiled check only): a dict, every key
        known, no value empty or refused, the required keys there. Else one of _NOT_PLAIN."""
        if type(data) is not dict:
            raise _NotPlain
        fields = self.plain_fields
        if self.check_only:
            for name, given in data.items():
                fields[name](given)
            value = None
        else:
            value = {name: fields[name](given) for name, given in data.items()}
        for name in self.required:
            if name not in data:
                raise _NotPlain
        return value

    def run(self, data: Any, path: str, problems: list[FieldProblem]) -> Any:
        try:
            prepared, errors = prepare_object(data, self.plain_fields, self.ctx)
        except ContractError as exc:
            problems.append(_problem(path, exc))
            return _FAILED
        value: dict = {}
        failed = False
        for name, given in prepared.items():
            rule = self.rules.get(name)
            if rule is None:
                result = self.nodes[name].run(given, _join(path, name), problems)
            else:
                try:
                    result = rule(given)
                except ContractError as exc:
                    problems.append(_problem(_join(path, name), exc))
                    result = _FAILED
            if result is _FAILED:
                failed = True
            else:
                value[name] = result
        for name in self.required:
            if name not in prepared and name not in errors:
                required = ContractError(ERR_REQUIRED, Code.REQUIRED.value)
                problems.append(_problem(_join(path, name), required))
                failed = True
        for name, error in errors.items():
            problems.append(_problem(_join(path, name), error))
            failed = True
        return _FAILED if failed else value


class _ListNode:
    __slots__ = ("child", "min_length", "max_length", "find_duplicates", "ctx")

    def __init__(
        self, serializer: ContractListSerializer, ctx: ContractContext, *, check_only: bool
    ):
        self.child = _ObjectNode(serializer.child, ctx, check_only=check_only)
        self.min_length = serializer.min_length
        self.max_length = serializer.max_length
        self.find_duplicates = serializer.child.find_duplicates
        self.ctx = ctx

    def plain(self, data: Any) -> list | None:
        """The value of a plainly valid list (None, compiled check only): the right length,
        every entry plainly valid, no value repeated that must be unique."""
        if type(data) is not list:
            raise _NotPlain
        check_list(data, min_length=self.min_length, max_length=self.max_length)
        plain_child = self.child.plain
        if self.child.check_only:
            for item in data:
                plain_child(item)
            value = None
        else:
            value = [plain_child(item) for item in data]
        if self.find_duplicates(data, self.ctx):
            raise _NotPlain
        return value

    def run(self, data: Any, path: str, problems: list[FieldProblem]) -> Any:
        try:
            check_list(data, min_length=self.min_length, max_length=self.max_length)
        except ContractError as exc:
            problems.append(_problem(path, exc))
            return _FAILED
        value = []
        failed = False
        for index, item in enumerate(data):
            result = self.child.run(item, f"{path}[{index}]", problems)
            if result is _FAILED:
                failed = True
            else:
                value.append(result)
        for index, found in self.find_duplicates(data, self.ctx).items():
            for name, error in found.items():
                problems.append(_problem(f"{path}[{index}].{name}", error))
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
        serializer = serializer_class()
        self._root = _ObjectNode(serializer, self.ctx, check_only=False)
        self._check_root = _ObjectNode(serializer, self.ctx, check_only=True)

    def clean(self, data: Any) -> tuple[dict | None, list[FieldProblem]]:
        """``(validated_data, [])`` or ``(None, problems)``."""
        try:
            return self._root.plain(data), []
        except _NOT_PLAIN:
            pass
        problems: list[FieldProblem] = []
        value = self._root.run(data, "", problems)
        return (None if value is _FAILED else value), problems

    def check(self, data: Any) -> list[FieldProblem]:
        """The problems ``clean`` would report, without building the cleaned values."""
        try:
            self._check_root.plain(data)
            return []
        except _NOT_PLAIN:
            pass
        problems: list[FieldProblem] = []
        self._check_root.run(data, "", problems)
        return problems


def customer_checker(*, strict: bool = True, time_zone: str | tzinfo = "UTC") -> Checker:
    return Checker(CustomerSerializer, strict=strict, time_zone=time_zone)


def request_checker(*, strict: bool = True, time_zone: str | tzinfo = "UTC") -> Checker:
    """Checks a whole ``{"customers": [...]}`` body; paths read ``customers[3].email``."""
    return Checker(MigrateRequestSerializer, strict=strict, time_zone=time_zone)
