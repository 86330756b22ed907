"""The customers' history: staging a transactions file, and one request body of it.

``history`` stages, each with its own ``manage.py stage_file`` process as from a shell
(``bench_big.stage_file_command``), the benchmark's files of 100,000 customers into one new
batch: the customers file, then the transactions file (one transaction per customer,
``data.transactions_file``: reward, type, amount, dates, and for a purchase its order in
``event.*``; each reward's transactions add up to its balance), then the balances, devices
and metrics files. Each timed staging starts after a ``CHECKPOINT``. The customers file is
the reference: the same command, the same run, the same number of rows.

Then the batch is validated (untimed) and, in this process, the first request of each
endpoint is built as a worker builds it before sending, 7 times each: ``customers_body``
of the first 1000 customers (``batch_chunks``) and ``history_body`` of the first
transactions request (``history_chunks``: at most ``MASIVO_TX_MAX_ITEMS``, 1000
transactions, here of 1000 customers). The figure is the median of the 7.

A million transactions are staged by ``bench_big``. Run only this group (about 2 minutes):

    make bench BENCH_ARGS="--only history --databases postgresql --output var/bench/history.md"
"""

from __future__ import annotations

import json
import statistics
import time

from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import StagingBatch
from customers.payload import batch_chunks, customers_body
from customers.payload.history import TRANSACTIONS, history_body, history_chunks
from customers.services import batch_validate
from tests.benchmarks import data, harness
from tests.benchmarks.bench_big import stage_file_command
from tests.benchmarks.bench_staging import CUSTOMERS, operator
from tests.benchmarks.case import own_peak_rss_mb

TRANSACTIONS_PER_CUSTOMER = 1
BODY_REPEATS = 7
# The order of the files: the two compared one after the other, then the rest.
ORDER = ("customers", TRANSACTIONS, "balances", "devices", "metrics")


def _checkpoint() -> None:
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


def _median_ms(build) -> tuple[float, bytes]:
    timings = []
    for _ in range(BODY_REPEATS):
        started = time.perf_counter()
        body = build()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000, body


def _body_figures(batch: StagingBatch) -> dict:
    customer_ids = next(batch_chunks(batch=batch, chunk_size=1000))
    row_ids = next(history_chunks(kind=TRANSACTIONS, batch=batch))
    customers_ms, customers_bytes = _median_ms(lambda: customers_body(customer_ids))
    history_ms, history_bytes = _median_ms(lambda: history_body(kind=TRANSACTIONS, row_ids=row_ids))
    with CaptureQueriesContext(connection) as captured:
        history_body(kind=TRANSACTIONS, row_ids=row_ids)
    carried = customers_of(history_bytes)
    if len(row_ids) != settings.MASIVO_TX_MAX_ITEMS or carried != len(row_ids):
        raise RuntimeError(f"the first request holds {len(row_ids)} rows of {carried} customers")
    return {
        "customers_body_ms": customers_ms,
        "customers_body_bytes": len(customers_bytes),
        "customers_body_customers": len(customer_ids),
        "transactions_body_ms": history_ms,
        "transactions_body_bytes": len(history_bytes),
        "transactions_body_rows": len(row_ids),
        "transactions_body_customers": carried,
        "transactions_body_queries": len(captured.captured_queries),
    }


def customers_of(body: bytes) -> int:
    """How many customers a request body carries."""
    return len(json.loads(body)["customers"])


def history(*, run: int) -> dict:
    customers = CUSTOMERS["postgresql"]
    paths = dict(data.files(customers=customers, root=harness.DATA_DIR))
    paths[TRANSACTIONS] = data.transactions_file(
        customers=customers, per_customer=TRANSACTIONS_PER_CUSTOMER, root=harness.DATA_DIR
    )
    user = operator()
    name = f"history-{run}"
    figures: dict = {"customers": customers, "per_customer": TRANSACTIONS_PER_CUSTOMER}
    for kind in ORDER:
        rows = (
            customers * TRANSACTIONS_PER_CUSTOMER
            if kind == TRANSACTIONS
            else data.row_count(kind, customers)
        )
        _checkpoint()
        seconds, peak_mb, said = stage_file_command(name, kind, paths[kind], user.username)
        if f"Staged {rows:,} {kind}" not in said:
            raise RuntimeError(f"stage_file {kind}: {said}")
        figures[f"{kind}_rows"] = rows
        figures[f"{kind}_rows_per_s"] = rows / seconds
        figures[f"{kind}_peak_mb"] = peak_mb
    figures["transactions_ratio"] = (
        figures["transactions_rows_per_s"] / figures["customers_rows_per_s"]
    )

    batch = StagingBatch.objects.get(name=name)
    started = time.perf_counter()
    summary = batch_validate(batch=batch, user=batch.created_by)
    figures["validation_s"] = time.perf_counter() - started
    if summary.valid != customers or not summary.is_validated:
        raise RuntimeError(f"validation: {summary}")
    figures.update(_body_figures(batch))
    figures["peak_mb"] = own_peak_rss_mb()
    return figures


CASES = {"history": history}
