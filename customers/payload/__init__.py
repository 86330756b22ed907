"""Staged rows -> the exact JSON body ``POST /customers/migrate`` takes (CONTRACT.md).

A body is built in a constant number of queries, whatever the number of customers, with
exact numbers: a staged ``Decimal("50.20")`` is the JSON number ``50.2``,
``123.00000000`` is ``123``, and a decimal that a float cannot hold keeps every digit.
Absent values are left out. On PostgreSQL the database writes each customer's JSON text
(``sql``, one query); elsewhere Python writes it from rows (``rows``, one query per table).

``customers_body`` gives a request body. ``customer_payloads`` gives the customers as
dicts (what validation checks): on PostgreSQL, read back from the very text that would be
sent. In payload dicts, numbers are ``int`` or exact ``Decimal`` (``json.dumps`` refuses
``Decimal`` on purpose): write them with ``body_bytes``.
"""

import json
from collections.abc import Iterable
from decimal import Decimal

from django.db import connection

from customers.payload.batches import (
    batch_chunks,
    batch_dry_run_lines,
    batch_send_queryset,
    payload_fingerprint,
)
from customers.payload.rows import payloads_from_rows
from customers.payload.sql import customer_texts
from customers.payload.writing import body_bytes, number_text, texts_body


def _is_written_by_database() -> bool:
    return connection.vendor == "postgresql"


def customer_payloads_by_pk(customer_ids: Iterable[int]) -> dict[int, dict]:
    """Payloads of the given customers keyed by pk, in the order given, in a constant
    number of queries. Meant for one request's worth of customers (at most 1000 ids)."""
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return {}
    if not _is_written_by_database():
        return payloads_from_rows(ids)
    rows = customer_texts(ids)
    payloads = json.loads("[" + ",".join(text for _, text in rows) + "]", parse_float=Decimal)
    return {pk: payload for (pk, _), payload in zip(rows, payloads, strict=True)}


def customer_payloads(customer_ids: Iterable[int]) -> list[dict]:
    """The body entries of the given customers, in the order given."""
    return list(customer_payloads_by_pk(customer_ids).values())


def customers_body(customer_ids: Iterable[int]) -> bytes:
    """The request body that sends the given customers, in the order given."""
    ids = list(dict.fromkeys(customer_ids))
    if not ids or not _is_written_by_database():
        return body_bytes(customer_payloads(ids))
    return texts_body([text for _, text in customer_texts(ids)])


__all__ = [
    "batch_chunks",
    "batch_dry_run_lines",
    "batch_send_queryset",
    "body_bytes",
    "customer_payloads",
    "customer_payloads_by_pk",
    "customers_body",
    "number_text",
    "payload_fingerprint",
]
