"""Staged rows -> the exact JSON body ``POST /customers/migrate`` takes (CONTRACT.md).

A body is built in a constant number of queries, whatever the number of customers, with
exact numbers: a staged ``Decimal("50.20")`` is the JSON number ``50.2``,
``123.00000000`` is ``123``, and a decimal that a float cannot hold keeps every digit.
Absent values are left out. On PostgreSQL the database writes each customer's JSON text
(``sql``, one query); elsewhere Python writes it from rows (``rows``, one query per table).

**Why the body is written twice.** Python's writer (``rows`` and ``writing``) is the
reference: it runs on every database, reads as the contract does, and is what a reader
steps through. It spends its time turning column values into Python objects only to turn
them back into text, so on PostgreSQL the database writes the same text where the rows are
(``sql``: one query, Python only joins the texts), about three times quicker for a
1000-customer body (17 ms against 48 ms, one balance, device and metric each). Every body
a job sends, and every payload validation checks, comes from ``sql`` on PostgreSQL, so it
must be byte for byte the reference's: ``tests/customers/test_payload_twins.py`` pins the
two equal over awkward staged data (non-ASCII text, leading zeros, date-times read with
offsets and in a batch's time zone, decimals with trailing zeros and every digit, empty
values, nested metadata, customers with and without each kind of child), and
``tests/customers/test_payload_sql.py`` value by value. The one difference allowed is in
``sql``'s docstring (numbers inside ``metadata``).

``customers_body`` gives a request body; ``row_entry`` one file row's entry before it is
staged (what the import's preview checks). ``customer_payloads`` gives the customers as
dicts (what validation checks): on PostgreSQL, read back from the very text that would be
sent. In payload dicts, numbers are ``int`` or exact ``Decimal`` (``json.dumps`` refuses
``Decimal`` on purpose): write them with ``body_bytes``.

Modules: ``spec`` (which column each key comes from), ``rows`` and ``writing`` (Python's
writer), ``sql`` (PostgreSQL's), ``body`` (picks one), ``batches`` (what a batch sends).
"""

from customers.payload.batches import (
    batch_chunks,
    batch_dry_run_lines,
    batch_send_queryset,
)
from customers.payload.body import (
    customer_payloads,
    customer_payloads_by_pk,
    customers_body,
    payloads_meanwhile,
)
from customers.payload.rows import row_entry
from customers.payload.writing import body_bytes, number_text

__all__ = [
    "batch_chunks",
    "batch_dry_run_lines",
    "batch_send_queryset",
    "body_bytes",
    "customer_payloads",
    "customer_payloads_by_pk",
    "customers_body",
    "payloads_meanwhile",
    "number_text",
    "row_entry",
]
