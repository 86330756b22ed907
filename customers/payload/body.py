"""The customers' payloads and request bodies, written by whichever way this database has:
PostgreSQL writes the JSON itself (``sql``), any other database leaves it to Python
(``rows`` and ``writing``)."""

import json
from collections.abc import Iterable
from decimal import Decimal

from django.db import connection

from customers.payload.rows import payloads_from_rows
from customers.payload.sql import customer_texts
from customers.payload.writing import body_bytes, texts_body


def is_written_by_database() -> bool:
    """Whether PostgreSQL writes the JSON (the only database with ``customers.payload.sql``)."""
    return connection.vendor == "postgresql"


def customer_payloads_by_pk(customer_ids: Iterable[int]) -> dict[int, dict]:
    """Payloads of the given customers keyed by pk, in the order given, in a constant
    number of queries. Meant for one request's worth of customers (at most 1000 ids)."""
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return {}
    if not is_written_by_database():
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
    if not ids or not is_written_by_database():
        return body_bytes(customer_payloads(ids))
    return texts_body([text for _, text in customer_texts(ids)])
