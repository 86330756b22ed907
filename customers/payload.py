"""Staged rows -> the exact JSON body ``POST /customers/migrate`` takes (CONTRACT.md).

Payloads are built from ``.values_list()`` rows in a constant number of queries (one per
table, whatever the number of customers) and written with exact decimals: a staged
``Decimal("50.20")`` is the JSON number ``50.2``, ``123.00000000`` is ``123``, and a
decimal that a float cannot hold keeps every digit. Absent values are left out.

In payload dicts, numbers are ``Decimal`` (exact; ``json.dumps`` refuses them on purpose):
use ``body_bytes`` to write a request body.
"""

import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Context, Decimal
from typing import Any

from django.conf import settings
from django.db.models import CharField, F, Func, Q, QuerySet

from customers.contract import MAX_CUSTOMERS_PER_REQUEST, PERIODS, format_datetime
from customers.models import (
    StagedBalance,
    StagedCustomer,
    StagedDevice,
    StagedMetric,
    StagingBatch,
)


def _datetime_text(value: datetime | str) -> str:
    """A date-time column as the contract writes it, from what ``_AsText`` selected: text
    from PostgreSQL, a naive value in UTC from SQLite, an aware one elsewhere."""
    if isinstance(value, str):
        return value[:-8] + "Z" if value.endswith(".000000Z") else value
    if value.tzinfo is None:
        return value.isoformat() + "Z"
    return format_datetime(value)


def _uuid_text(value: uuid.UUID | str) -> str:
    """A UUID column as text; SQLite stores 32 hex digits without dashes."""
    if isinstance(value, str) and len(value) == 32:
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return str(value)


class _AsText(Func):
    """A date-time or UUID column, selected without Django's conversion to Python objects.

    Converting is what building a payload would mostly spend its time on, only to turn the
    objects back into text. PostgreSQL writes the text itself (date-times in UTC as
    ``2023-11-07T05:31:56.000000Z``); SQLite hands over what it stores (hex UUIDs, and
    date-times that its driver reads as naive values in UTC). ``_datetime_text`` and
    ``_uuid_text`` finish either.
    """

    output_field = CharField()
    template = "%(expressions)s"
    postgresql_templates = {
        "datetime": (
            "to_char(%(expressions)s AT TIME ZONE 'UTC', "
            """'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
        ),
        "uuid": "(%(expressions)s)::text",
    }

    def __init__(self, column: str, *, kind: str):
        super().__init__(F(column))
        self.kind = kind

    def as_postgresql(self, compiler, connection, **extra_context):
        template = self.postgresql_templates[self.kind]
        return self.as_sql(compiler, connection, template=template, **extra_context)


# (JSON key, staging column, writer) in the contract's order; ``None`` writes the value as
# it is. Devices are written by hand: their ``device_info`` gathers three columns.
_Spec = tuple[tuple[str, str, Callable[[Any], Any] | None], ...]
_CUSTOMER: _Spec = (
    ("id", "legacy_id", None),
    ("name", "name", None),
    ("email", "email", None),
    ("gender", "gender", None),
    ("dob", "dob", _datetime_text),
    ("registration_date", "registration_date", _datetime_text),
    ("status", "status", None),
    ("document_type", "document_type", None),
    ("document_number", "document_number", None),
    ("country", "country", None),
    ("metadata", "metadata", None),
    ("metrics", "metrics_updated_at", _datetime_text),
)
_BALANCE: _Spec = (
    ("reward_id", "reward_id", _uuid_text),
    ("amount", "amount", None),
    ("expiration_date", "expiration_date", _datetime_text),
    ("brand_id", "brand_id", None),
    ("channel_id", "channel_id", None),
    ("store_id", "store_id", None),
    ("issued_at", "issued_at", _datetime_text),
    ("funded_by", "funded_by", None),
)
_DEVICE: _Spec = (
    ("device_token", "device_token", None),
    ("platform", "platform", None),
    ("model", "model", None),
    ("osVersion", "os_version", None),
    ("expires_at", "expires_at", _datetime_text),
    ("created_at", "created_at", _datetime_text),
)
_METRIC: _Spec = (
    ("from", "period_from", _datetime_text),
    ("to", "period_to", _datetime_text),
    ("tier_id", "tier_id", _uuid_text),
    ("last_visit", "last_visit", _datetime_text),
    ("last_session", "last_session", _datetime_text),
    ("spend_total", "spend_total", None),
    ("number_of_purchases", "number_of_purchases", None),
)
_PERIOD_ORDER = {period: index for index, period in enumerate(PERIODS)}
_DEVICE_INFO_KEYS = ("platform", "model", "osVersion")


def _select(spec: _Spec) -> list[str | _AsText]:
    kinds = {_datetime_text: "datetime", _uuid_text: "uuid"}
    return [
        column if write is None else _AsText(column, kind=kinds[write]) for _, column, write in spec
    ]


def _writers(spec: _Spec) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    return tuple((key, write) for key, _, write in spec)


def _fill(writers: tuple, values: Iterable) -> dict:
    """Present values under their JSON keys, written the contract's way; absent ones left out."""
    return {
        key: value if write is None else write(value)
        for (key, write), value in zip(writers, values, strict=True)
        if value is not None and value != ""
    }


_CUSTOMER_WRITERS = _writers(_CUSTOMER)
_BALANCE_WRITERS = _writers(_BALANCE)
_DEVICE_WRITERS = _writers(_DEVICE)
_METRIC_WRITERS = _writers(_METRIC)


def _ids_filter(field: str, ids: list[int]) -> Q:
    """``field`` among ``ids``. Ids close together (a chunk of one batch, as validation and
    jobs ask for) become a range: a thousand-parameter IN list costs more to send and plan
    than the rows it selects. Rows in the range but not in ``ids`` are dropped by the
    caller; the range is at most twice as wide as the list."""
    low, high = min(ids), max(ids)
    if high - low < 2 * len(ids):
        return Q(**{f"{field}__gte": low, f"{field}__lte": high})
    return Q(**{f"{field}__in": ids})


def customer_payloads_by_pk(customer_ids: Iterable[int]) -> dict[int, dict]:
    """Payloads of the given customers keyed by pk, in four queries whatever their number.

    Meant for one request's worth of customers (at most 1000 ids).
    """
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return {}
    wanted = set(ids)
    payloads: dict[int, dict] = {}
    # ``order_by()``: the models' default orderings would join the batch table for nothing.
    customer_rows = (
        StagedCustomer.objects.filter(_ids_filter("pk", ids))
        .order_by()
        .values_list("pk", *_select(_CUSTOMER))
    )
    for pk, *values in customer_rows:
        if pk not in wanted:
            continue
        payload = _fill(_CUSTOMER_WRITERS, values)
        if payload.get("metadata") in ({}, []):
            del payload["metadata"]
        if "metrics" in payload:
            payload["metrics"] = {"updated_at": payload["metrics"]}
        payloads[pk] = payload
    if not payloads:
        return {}
    children = _ids_filter("customer_id", ids)

    metric_rows = (
        StagedMetric.objects.filter(children)
        .order_by()
        .values_list("customer_id", "period", *_select(_METRIC))
    )
    periods: dict[int, list[tuple[str, dict]]] = {}
    for customer_id, period, *values in metric_rows:
        periods.setdefault(customer_id, []).append((period, _fill(_METRIC_WRITERS, values)))
    for customer_id, found in periods.items():
        payload = payloads.get(customer_id)
        if payload is None:
            continue
        found.sort(key=lambda entry: _PERIOD_ORDER.get(entry[0], len(_PERIOD_ORDER)))
        metrics = dict(found)
        if "metrics" in payload:
            metrics["updated_at"] = payload["metrics"]["updated_at"]
        payload["metrics"] = metrics

    balance_rows = (
        StagedBalance.objects.filter(children)
        .order_by("customer_id", "pk")
        .values_list("customer_id", *_select(_BALANCE))
    )
    for customer_id, *values in balance_rows:
        payload = payloads.get(customer_id)
        if payload is not None:
            payload.setdefault("balance", []).append(_fill(_BALANCE_WRITERS, values))

    device_rows = (
        StagedDevice.objects.filter(children)
        .order_by("customer_id", "pk")
        .values_list("customer_id", *_select(_DEVICE))
    )
    for customer_id, *values in device_rows:
        payload = payloads.get(customer_id)
        if payload is None:
            continue
        device = _fill(_DEVICE_WRITERS, values)
        info = {key: device.pop(key) for key in _DEVICE_INFO_KEYS if key in device}
        if info:
            dates = {key: device.pop(key) for key in ("expires_at", "created_at") if key in device}
            device["device_info"] = info
            device.update(dates)
        payload.setdefault("devices", []).append(device)

    return {pk: payloads[pk] for pk in ids if pk in payloads}


def customer_payloads(customer_ids: list[int]) -> list[dict]:
    """The body entries of the given customers, in the order given, in four queries."""
    return list(customer_payloads_by_pk(customer_ids).values())


# --- Writing the body ------------------------------------------------------------------------
_EXACT = Context(prec=64)


def number_text(value: Decimal) -> str:
    """A decimal as JSON number text without exponent or trailing zeros: ``50.2``, ``123``."""
    text = str(value)
    if "E" in text or "e" in text:
        text = format(value.normalize(_EXACT), "f")
    elif "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "0", "") else text


def body_bytes(payloads: list[dict]) -> bytes:
    """The request body ``{"customers": [...]}``: compact JSON, UTF-8, exact decimals."""
    raw_marker = ""

    def exact(value: Any) -> Any:
        nonlocal raw_marker
        if not isinstance(value, Decimal):
            raise TypeError(f"{type(value).__name__} is not JSON serializable")
        text = number_text(value)
        if "." not in text:
            return int(text)
        as_float = float(text)
        if repr(as_float) == text:
            return as_float
        # No float holds these digits: write a marker string, then the text in its place.
        # The marker is random per body, so no value in the data can imitate it.
        if not raw_marker:
            raw_marker = secrets.token_hex(16)
        return raw_marker + text

    body = json.dumps(
        {"customers": payloads},
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=exact,
    )
    if raw_marker:
        body = re.sub(f'"{raw_marker}(-?[0-9.]+)"', r"\1", body)
    return body.encode("utf-8")


# --- What a batch sends ------------------------------------------------------------------------
def batch_send_queryset(batch: StagingBatch) -> QuerySet[StagedCustomer]:
    """The customers a job sends for ``batch``: valid and not excluded, in pk order."""
    return StagedCustomer.objects.filter(batch=batch, is_valid=True, is_excluded=False).order_by(
        "pk"
    )


def _chunk_size(chunk_size: int | None) -> int:
    size = settings.MIGRATION_CHUNK_SIZE if chunk_size is None else chunk_size
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    return min(size, MAX_CUSTOMERS_PER_REQUEST)


def batch_chunks(*, batch: StagingBatch, chunk_size: int | None = None) -> Iterator[list[int]]:
    """The pks a job sends, in pk order, one request's worth at a time.

    Reads one chunk per query (keyset pagination), so no cursor stays open between chunks
    and memory holds one chunk, whatever the size of the batch.
    """
    size = _chunk_size(chunk_size)
    queryset = batch_send_queryset(batch).values_list("pk", flat=True)
    last = 0
    while True:
        ids = list(queryset.filter(pk__gt=last)[:size])
        if not ids:
            return
        yield ids
        if len(ids) < size:
            return
        last = ids[-1]


def batch_dry_run_lines(*, batch: StagingBatch, chunk_size: int | None = None) -> Iterator[bytes]:
    """Every request body the batch would send, one per line (JSON Lines), built lazily."""
    for ids in batch_chunks(batch=batch, chunk_size=chunk_size):
        yield body_bytes(customer_payloads(ids)) + b"\n"


def payload_fingerprint(*, batch: StagingBatch) -> str:
    """SHA-256 over every request body the batch would send (as ``batch_dry_run_lines``)."""
    digest = hashlib.sha256()
    for line in batch_dry_run_lines(batch=batch):
        digest.update(line)
    return digest.hexdigest()
