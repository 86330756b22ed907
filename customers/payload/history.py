"""Staged history -> the exact bodies of ``POST /customers/migrate/transactions`` and
``POST /customers/migrate/events`` (CONTRACT.md, "History: transactions and events").

A body is ``{"customers": [{"id": ..., "transactions": [...]}]}`` (or ``"events"``), its
customers in legacy id order and each one's rows in file order, written like the
customers' bodies (exact decimals, date-times in UTC with ``Z``, absent values left out).

What a batch sends of its history: the rows of its customers that are valid and not
excluded, and of customers sent by an earlier batch (not staged here again). Requests
are cut within the endpoint's limits (``MASIVO_TX_MAX_ITEMS`` transactions and
``MASIVO_TX_MAX_CUSTOMERS`` customers; the same for events): a customer's transactions
always go together in one entry of one request, while its events may be split over
requests. A chunk of history is the list of the rows' pks it carries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from customers.contract import format_datetime
from customers.models import StagedEvent, StagedTransaction, StagingBatch
from customers.payload.batches import batch_dry_run_lines
from customers.payload.writing import body_bytes

TRANSACTIONS = "transactions"
EVENTS = "events"
HISTORY_KINDS = (TRANSACTIONS, EVENTS)
MODELS = {TRANSACTIONS: StagedTransaction, EVENTS: StagedEvent}

_TX_TEXT = ("type", "brand_id", "store_id", "channel_id", "funded_by", "details")
_TX_COLUMNS = (
    "pk", "customer_legacy_id", "reward_id", "type", "amount", "issued_at", "resolved_at",
    "brand_id", "store_id", "channel_id", "funded_by", "details", "cost", "event",
)  # fmt: skip
_EVENT_COLUMNS = (
    "pk", "customer_legacy_id", "type", "fulfilled", "issued_at", "resolved_at", "brand_id",
    "order",
)  # fmt: skip


def _put(entry: dict, key: str, value: Any) -> None:
    """Set ``key`` unless the value is absent (None, blank text, an empty object)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return
    if isinstance(value, dict | list) and not value:
        return
    entry[key] = value


def _when(value) -> str | None:
    return None if value is None else format_datetime(value)


def transaction_entry(row: dict) -> dict:
    """One staged transaction (a dict of ``_TX_COLUMNS``) as the request carries it."""
    entry: dict = {}
    _put(entry, "reward_id", None if row["reward_id"] is None else str(row["reward_id"]))
    _put(entry, "type", row["type"])
    _put(entry, "amount", row["amount"])
    _put(entry, "issued_at", _when(row["issued_at"]))
    _put(entry, "resolved_at", _when(row["resolved_at"]))
    for key in _TX_TEXT[1:]:
        _put(entry, key, row[key])
    _put(entry, "cost", row["cost"])
    _put(entry, "event", row["event"])
    return entry


def event_entry(row: dict) -> dict:
    """One staged event (a dict of ``_EVENT_COLUMNS``) as the request carries it: not
    fulfilled only when its file says so."""
    entry: dict = {}
    _put(entry, "type", row["type"])
    entry["fulfilled"] = row["fulfilled"] is not False
    _put(entry, "issued_at", _when(row["issued_at"]))
    _put(entry, "resolved_at", _when(row["resolved_at"]))
    _put(entry, "brand_id", row["brand_id"])
    entry["order"] = row["order"] if isinstance(row["order"], dict) else {}
    return entry


ENTRIES = {TRANSACTIONS: (_TX_COLUMNS, transaction_entry), EVENTS: (_EVENT_COLUMNS, event_entry)}


def history_payloads(*, kind: str, row_ids: Iterable[int]) -> list[dict]:
    """The ``customers`` of a request carrying the rows ``row_ids`` of ``kind``: one entry
    per customer (legacy id order), its rows in file order."""
    columns, build = ENTRIES[kind]
    rows = (
        MODELS[kind]
        .objects.filter(pk__in=list(row_ids))
        .order_by("customer_legacy_id", "pk")
        .values(*columns)
    )
    payloads: list[dict] = []
    for row in rows:
        if not payloads or payloads[-1]["id"] != row["customer_legacy_id"]:
            payloads.append({"id": row["customer_legacy_id"], kind: []})
        payloads[-1][kind].append(build(row))
    return payloads


def history_body(*, kind: str, row_ids: Iterable[int]) -> bytes:
    """The request body carrying the rows ``row_ids`` of ``kind``."""
    return body_bytes(history_payloads(kind=kind, row_ids=row_ids))


# The history rows a job sends: those of valid customers not excluded, and of customers an
# earlier batch sent (not staged here).
SENT_ROWS = Q(customer__is_valid=True, customer__is_excluded=False) | Q(customer__isnull=True)


def history_send_queryset(*, kind: str, batch: StagingBatch) -> QuerySet:
    """The rows of ``kind`` a job sends for ``batch`` (``SENT_ROWS``), by customer then
    file order."""
    return (
        MODELS[kind]
        .objects.filter(batch=batch)
        .filter(SENT_ROWS)
        .order_by("customer_legacy_id", "pk")
    )


def history_limits(kind: str) -> tuple[int, int]:
    """(items, customers) one request of ``kind`` may carry."""
    if kind == TRANSACTIONS:
        return settings.MASIVO_TX_MAX_ITEMS, settings.MASIVO_TX_MAX_CUSTOMERS
    return settings.MASIVO_EVENTS_MAX_ITEMS, settings.MASIVO_EVENTS_MAX_CUSTOMERS


def history_chunk_plan(
    *,
    kind: str,
    batch: StagingBatch,
    customer_ids: Iterable[int] | None = None,
    planned: set[int] | frozenset[int] = frozenset(),
) -> Iterator[tuple[list[int], int]]:
    """The pks of ``kind`` a job sends, one request's worth at a time within the limits,
    each with the number of customers it carries: only of the staged customers
    ``customer_ids`` when given, and never the rows ``planned`` already.

    A customer's transactions are never split: a customer with more than fit in one
    request is refused by validation before, and left out here should one slip through.
    Events are split where the limit falls."""
    max_items, max_customers = history_limits(kind)
    rows = history_send_queryset(kind=kind, batch=batch)
    if customer_ids is not None:
        rows = rows.filter(customer_id__in=list(customer_ids))
    rows = rows.values_list("pk", "customer_legacy_id")
    chunk: list[int] = []
    customers: set[str] = set()
    pending: list[int] = []  # one customer's transactions, kept together
    pending_id: str | None = None

    def take(pks: list[int], legacy_id: str) -> Iterator[tuple[list[int], int]]:
        nonlocal chunk, customers
        if kind == TRANSACTIONS and len(pks) > max_items:
            return
        full = len(chunk) + len(pks) > max_items
        if chunk and (full or (legacy_id not in customers and len(customers) >= max_customers)):
            yield chunk, len(customers)
            chunk, customers = [], set()
        chunk += pks
        customers.add(legacy_id)

    for pk, legacy_id in rows.iterator(chunk_size=2000):
        if pk in planned:
            continue
        if kind == EVENTS:
            yield from take([pk], legacy_id)
            continue
        if legacy_id != pending_id and pending:
            yield from take(pending, pending_id)
            pending = []
        pending_id = legacy_id
        pending.append(pk)
    if pending:
        yield from take(pending, pending_id)
    if chunk:
        yield chunk, len(customers)


def history_chunks(*, kind: str, batch: StagingBatch) -> Iterator[list[int]]:
    """The pks of each request of ``kind`` the batch sends (``history_chunk_plan``)."""
    for row_ids, _customers in history_chunk_plan(kind=kind, batch=batch):
        yield row_ids


def history_dry_run_lines(*, kind: str, batch: StagingBatch) -> Iterator[bytes]:
    """Every ``kind`` request body the batch would send, one per line (JSON Lines)."""
    for row_ids in history_chunks(kind=kind, batch=batch):
        yield history_body(kind=kind, row_ids=row_ids) + b"\n"


CUSTOMERS = "customers"
ENDPOINTS = (CUSTOMERS, *HISTORY_KINDS)


def dry_run_lines(*, endpoint: str, batch: StagingBatch) -> Iterator[bytes]:
    """Every request body the batch would send to ``endpoint`` (``ENDPOINTS``), one per
    line: what the admin, the API and ``batch_dry_run`` download."""
    if endpoint == CUSTOMERS:
        return batch_dry_run_lines(batch=batch)
    return history_dry_run_lines(kind=endpoint, batch=batch)


def dry_run_label(endpoint: str) -> str:
    """What the customer-data log calls the dry run of ``endpoint``."""
    return "dry run" if endpoint == CUSTOMERS else f"dry run ({endpoint})"
