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
raises ``ContractError`` with one of the message constants (``messages``) and its
parameters. The serializers wrap the rules in ``RuleField``; ``problems_from_errors``
flattens a serializer's errors into ``FieldProblem`` lists (paths such as
``balance[0].amount``), and ``serializer_problems`` keeps each problem's message
untranslated too (``console.messages``), for validation to store.

**Why the contract runs two ways.** The serializers are the reference: they state the
contract the way DRF readers expect, and the nested JSON import and the sandbox run them
as they are. Batch validation checks every staged customer of a batch (hundreds of
thousands), and DRF spends most of its time in per-field machinery (bound fields, error
dicts, ``run_validation`` per value), so ``Checker`` compiles the very same serializers
into plain functions with the rules' own ``clean`` at the leaves, and a fast path per
rule for the usual valid value (the table ``checker._STRICT_FAST_PATHS``): about ten times
quicker (1000 example customers, strict: 13 ms against 135 ms). Being built from the
serializers, it cannot miss a field; what it could get wrong is the order or the wording
of problems, or a fast path accepting what the rule refuses.
``tests/customers/test_contract_twins.py`` pins the two equal: the same problems (code,
path, message) and the same cleaned values, over valid and invalid customers and bodies in
both modes, every message constant produced at least once; ``problems()`` in
``tests/customers/test_contract.py`` compares them again in each of its cases.

The customers' history has bodies of its own, ``POST /customers/migrate/transactions`` and
``POST /customers/migrate/events``: ``history`` states them with the same rules, modes and
messages style (``MigrateTransactionsRequestSerializer``, ``MigrateEventsRequestSerializer``),
its few rules of its own (``Boolean``, ``SignedAmount``) and the limits of one request.

Modules: ``messages`` (limits, messages, error types), ``rules`` (one rule per kind of
value, and the context they read), ``serializers`` (the body), ``checker`` (the compiled
checker), ``history`` and ``history_rules`` (the history's bodies). The package exports what
the rest of the console uses; the messages and the rules are imported from their modules.
"""

from customers.contract.checker import Checker, customer_checker, request_checker
from customers.contract.history import (
    EventsCustomerSerializer,
    EventSerializer,
    MigrateEventsRequestSerializer,
    MigrateTransactionsRequestSerializer,
    TransactionsCustomerSerializer,
    TransactionSerializer,
)
from customers.contract.messages import (
    MAX_CUSTOMERS_PER_REQUEST,
    PERIODS,
    Code,
    ContractError,
    FieldProblem,
)
from customers.contract.rules import format_datetime, parse_datetime_value
from customers.contract.serializers import (
    CustomerSerializer,
    MigrateRequestSerializer,
    problems_from_errors,
    serializer_problems,
)

__all__ = [
    "MAX_CUSTOMERS_PER_REQUEST",
    "PERIODS",
    "Checker",
    "Code",
    "ContractError",
    "CustomerSerializer",
    "EventSerializer",
    "EventsCustomerSerializer",
    "FieldProblem",
    "MigrateEventsRequestSerializer",
    "MigrateRequestSerializer",
    "MigrateTransactionsRequestSerializer",
    "TransactionSerializer",
    "TransactionsCustomerSerializer",
    "customer_checker",
    "format_datetime",
    "parse_datetime_value",
    "problems_from_errors",
    "request_checker",
    "serializer_problems",
]
