"""The customers' payloads and request bodies, written by whichever way this database has:
PostgreSQL writes the JSON itself (``sql``), any other database leaves it to Python
(``rows`` and ``writing``)."""

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal

from django.db import connection

from customers.payload.rows import payloads_from_rows
from customers.payload.sql import customer_texts, customers_query
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
    return payloads_from_texts(customer_texts(ids))


def payloads_from_texts(rows: list[tuple[int, str]]) -> dict[int, dict]:
    """``(pk, JSON text)`` rows, as ``sql.customer_texts`` gives them -> payloads by pk."""
    payloads = json.loads("[" + ",".join(text for _, text in rows) + "]", parse_float=Decimal)
    return {pk: payload for (pk, _), payload in zip(rows, payloads, strict=True)}


@contextmanager
def payloads_meanwhile(customer_ids: Iterable[int]) -> Iterator[Callable[[], dict[int, dict]]]:
    """The payloads of ``customer_ids`` (as ``customer_payloads_by_pk``), written by the
    database while the block runs; the callable yielded gives them after the block.

    On PostgreSQL the query is sent in psycopg's pipeline mode as the block starts and its
    rows read as it ends, so the database writes the JSON while Python works: validation
    checks one chunk while the next one's payloads are being written, and on two cores
    the database's share costs no wall time. The block must not use the database (a query
    would wait for this one). Elsewhere the payloads are built when asked for.
    """
    ids = list(dict.fromkeys(customer_ids))
    if not ids or not is_written_by_database():
        yield lambda: customer_payloads_by_pk(ids)
        return
    found: dict[str, dict[int, dict]] = {}
    connection.ensure_connection()
    raw = connection.connection
    with raw.pipeline(), raw.cursor() as cursor:
        cursor.execute(customers_query(), [ids])
        yield lambda: found["payloads"]
        rows = cursor.fetchall()
    found["payloads"] = payloads_from_texts(rows)


def customer_payloads(customer_ids: Iterable[int]) -> list[dict]:
    """The body entries of the given customers, in the order given."""
    return list(customer_payloads_by_pk(customer_ids).values())


def customers_body(customer_ids: Iterable[int]) -> bytes:
    """The request body that sends the given customers, in the order given."""
    ids = list(dict.fromkeys(customer_ids))
    if not ids or not is_written_by_database():
        return body_bytes(customer_payloads(ids))
    return texts_body([text for _, text in customer_texts(ids)])
