"""Payloads written in Python from ``.values_list()`` rows: the way on every database but
PostgreSQL (which writes the JSON itself, see ``customers.payload.sql``).

One query per table, whatever the number of customers. Numbers stay exact ``Decimal``
values; ``body_bytes`` writes them.
"""

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db.models import CharField, F, Func, Model, Q

from customers.contract import format_datetime
from customers.models import StagedBalance, StagedCustomer, StagedDevice, StagedMetric
from customers.payload import spec


def datetime_text(value: datetime | str) -> str:
    """A date-time column as the contract writes it, from what ``_AsText`` selected: text
    from PostgreSQL, a naive value in UTC from SQLite, an aware one elsewhere. Fractions
    of a second are written only when present, without trailing zeros (``05:31:56.25Z``),
    as PostgreSQL writes them."""
    if isinstance(value, str):
        text = value[:-1]
    elif value.tzinfo is None:
        text = value.isoformat()
    else:
        text = format_datetime(value)[:-1]
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "Z"


def uuid_text(value: uuid.UUID | str) -> str:
    """A UUID column as text; SQLite stores 32 hex digits without dashes."""
    if isinstance(value, str) and len(value) == 32:
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return str(value)


class _AsText(Func):
    """A date-time or UUID column, selected without Django's conversion to Python objects.

    Converting is what building a payload would mostly spend its time on, only to turn the
    objects back into text. PostgreSQL writes the text itself (date-times in UTC as
    ``2023-11-07T05:31:56.000000Z``); SQLite hands over what it stores (hex UUIDs, and
    date-times that its driver reads as naive values in UTC). ``datetime_text`` and
    ``uuid_text`` finish either.
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


_WRITERS: dict[str, Callable[[Any], Any]] = {"datetime": datetime_text, "uuid": uuid_text}


class _Table:
    """What to select from one staging table, and how to write each value read."""

    def __init__(self, model: type[Model], fields: spec.Spec):
        kinds = [spec.field_kind(model, column) for _, column in fields]
        self.columns = tuple(column for _, column in fields)
        self.select = [
            _AsText(column, kind=kind) if kind in _WRITERS else column
            for (_, column), kind in zip(fields, kinds, strict=True)
        ]
        self.writers = tuple(
            (key, _WRITERS.get(kind)) for (key, _), kind in zip(fields, kinds, strict=True)
        )

    def fill(self, values: Iterable) -> dict:
        """Present values under their JSON keys, written the contract's way; absent ones
        (null or "") left out."""
        return {
            key: value if write is None else write(value)
            for (key, write), value in zip(self.writers, values, strict=True)
            if value is not None and value != ""
        }

    def fill_row(self, row: Mapping[str, Any]) -> dict:
        """``fill`` from values by staging column (a parsed file row, aware date-times and
        ``uuid.UUID`` values included); missing columns are absent."""
        return self.fill([row.get(column) for column in self.columns])


_CUSTOMERS = _Table(StagedCustomer, (*spec.CUSTOMER, spec.METRICS_UPDATED_AT))
_METRICS = _Table(StagedMetric, spec.METRIC)
_BALANCES = _Table(StagedBalance, spec.BALANCE)
_DEVICES = _Table(StagedDevice, (spec.DEVICE_TOKEN, *spec.DEVICE_INFO, *spec.DEVICE_DATES))
_INFO_KEYS = tuple(key for key, _ in spec.DEVICE_INFO)
_DATE_KEYS = tuple(key for key, _ in spec.DEVICE_DATES)
_UPDATED_AT = spec.METRICS_UPDATED_AT[0]


def _ids_filter(field: str, ids: list[int]) -> Q:
    """``field`` among ``ids``. Ids close together (a chunk of one batch, as validation and
    jobs ask for) become a range: a thousand-parameter IN list costs more to send and plan
    than the rows it selects. Rows in the range but not in ``ids`` are dropped by the
    caller; the range is at most twice as wide as the list."""
    low, high = min(ids), max(ids)
    if high - low < 2 * len(ids):
        return Q(**{f"{field}__gte": low, f"{field}__lte": high})
    return Q(**{f"{field}__in": ids})


def _period_key(entry: tuple[str, dict]) -> tuple[int, str]:
    return spec.PERIOD_ORDER.get(entry[0], len(spec.PERIOD_ORDER)), entry[0]


def _customers(ids: list[int]) -> dict[int, dict]:
    """The customers' own fields (and ``metrics.updated_at``), keyed by pk, as read."""
    wanted = set(ids)
    payloads: dict[int, dict] = {}
    # ``order_by()``: the models' default orderings would join the batch table for nothing.
    rows = (
        StagedCustomer.objects.filter(_ids_filter("pk", ids))
        .order_by()
        .values_list("pk", *_CUSTOMERS.select)
    )
    for pk, *values in rows:
        if pk not in wanted:
            continue
        payloads[pk] = _customer_shaped(_CUSTOMERS.fill(values))
    return payloads


def _customer_shaped(payload: dict) -> dict:
    """A customer's filled columns as its entry: an empty ``metadata`` left out,
    ``metrics_updated_at`` moved under ``metrics``."""
    if payload.get("metadata") in ({}, []):
        del payload["metadata"]
    if _UPDATED_AT in payload:
        payload["metrics"] = {_UPDATED_AT: payload.pop(_UPDATED_AT)}
    return payload


def _device_shaped(device: dict) -> dict:
    """A device's filled columns as its entry: ``device_info`` gathers the platform, model
    and OS version, and is left out when none of them is there."""
    info = {key: device.pop(key) for key in _INFO_KEYS if key in device}
    if info:
        dates = {key: device.pop(key) for key in _DATE_KEYS if key in device}
        device["device_info"] = info
        device.update(dates)
    return device


def _metrics_add(payloads: dict[int, dict], children: Q) -> None:
    """``metrics``: the periods in the contract's order, then ``updated_at``."""
    rows = (
        StagedMetric.objects.filter(children)
        .order_by()
        .values_list("customer_id", "period", *_METRICS.select)
    )
    periods: dict[int, list[tuple[str, dict]]] = {}
    for customer_id, period, *values in rows:
        periods.setdefault(customer_id, []).append((period, _METRICS.fill(values)))
    for customer_id, found in periods.items():
        payload = payloads.get(customer_id)
        if payload is None:
            continue
        found.sort(key=_period_key)
        metrics = dict(found)
        if "metrics" in payload:
            metrics[_UPDATED_AT] = payload["metrics"][_UPDATED_AT]
        payload["metrics"] = metrics


def _balances_add(payloads: dict[int, dict], children: Q) -> None:
    """``balance``: one entry per staged row, in pk order."""
    rows = (
        StagedBalance.objects.filter(children)
        .order_by("customer_id", "pk")
        .values_list("customer_id", *_BALANCES.select)
    )
    for customer_id, *values in rows:
        payload = payloads.get(customer_id)
        if payload is not None:
            payload.setdefault("balance", []).append(_BALANCES.fill(values))


def _devices_add(payloads: dict[int, dict], children: Q) -> None:
    """``devices``: one entry per staged row, in pk order; ``device_info`` gathers the
    platform, model and OS version, and is left out when none of them is there."""
    rows = (
        StagedDevice.objects.filter(children)
        .order_by("customer_id", "pk")
        .values_list("customer_id", *_DEVICES.select)
    )
    for customer_id, *values in rows:
        payload = payloads.get(customer_id)
        if payload is None:
            continue
        payload.setdefault("devices", []).append(_device_shaped(_DEVICES.fill(values)))


def payloads_from_rows(ids: list[int]) -> dict[int, dict]:
    """Payloads of the customers ``ids`` (distinct, not empty) keyed by pk, in their order."""
    payloads = _customers(ids)
    if not payloads:
        return {}
    children = _ids_filter("customer_id", ids)
    _metrics_add(payloads, children)
    _balances_add(payloads, children)
    _devices_add(payloads, children)
    return {pk: payloads[pk] for pk in ids if pk in payloads}


# How a parsed file row of each kind becomes its entry (see ``row_entry``).
_ROW_ENTRIES: dict[str, Callable[[Mapping[str, Any]], dict]] = {
    "customers": lambda row: _customer_shaped(_CUSTOMERS.fill_row(row)),
    "balances": _BALANCES.fill_row,
    "devices": lambda row: _device_shaped(_DEVICES.fill_row(row)),
    "metrics": _METRICS.fill_row,
}


def row_entry(kind: str, row: Mapping[str, Any]) -> dict:
    """The body entry of one file row before it is staged, from its values by staging
    column, written as ``payloads_from_rows`` writes it once staged: a customer's own
    fields (no children), one ``balance`` or ``devices`` entry, or one period of
    ``metrics``. The import's preview checks it with the same contract as validation."""
    return _ROW_ENTRIES[kind](row)
