"""Staging through a mapping against the same data in the console's own headers.

``mapping_compare`` stages, with ``batch_stage_file`` (as ``manage.py stage_file`` does,
the file read from disk), the same data twice in one process: from the console's own
files, and from the same data in a legacy system's shape (``data.foreign_files``: Spanish
headers, semicolons, the name split in two, the email in mixed case, coded gender and
status, day-first dates in Bogotá's time, comma decimals) read through the mappings in
``data.MAPPINGS``, modelled on docs/samples/legacy-es. Both give the same staged rows.

- customers: 500,000 rows, the figure with a target (mapped ÷ own, rows per second), each
  shape staged twice in the order own, mapped, mapped, own (a machine getting busier or
  quieter during the run weighs on both alike), its rate the mean of the two;
- balances: the 200,000 balances of 100,000 customers, once each, for information (their
  customers are staged first, outside the timing, in each shape's own batch).

Each staging starts from the same state: the staged tables emptied and, on PostgreSQL, a
CHECKPOINT, so that neither shape inherits the other's writes still to be flushed. The
order reverses from run to run. The process's CPU seconds are kept too: their ratio is
what the mapping itself costs, whatever else the machine is doing.

Run only this group (about 4 minutes):

    make bench BENCH_ARGS="--only mapping --databases postgresql --output var/bench/mapping.md"
"""

from __future__ import annotations

import time
from pathlib import Path

from django.db import connection

from customers.models import StagedBalance, StagedCustomer, StagedDevice, StagedMetric
from customers.staging import batch_stage_file
from tests.benchmarks import data, harness
from tests.benchmarks.bench_staging import new_batch
from tests.benchmarks.case import own_peak_rss_mb

# Customers of each part of the comparison.
SIZES = {"customers": 500_000, "balances": 100_000}
SHAPES = ("own", "mapped")
# The turns of each part: the customers' in an A-B-B-A order, so that a machine getting
# busier or quieter during the run weighs on both shapes alike.
ORDERS = {"customers": ("own", "mapped", "mapped", "own"), "balances": SHAPES}


def _checkpoint() -> None:
    """On PostgreSQL, write out what earlier stagings left to flush."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")


def _tables_empty() -> None:
    tables = [m._meta.db_table for m in (StagedMetric, StagedDevice, StagedBalance, StagedCustomer)]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
        else:
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - our own table names
    _checkpoint()


def _stage(*, kind: str, path: Path, batch, mapping: dict | None) -> tuple[int, float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    result = batch_stage_file(
        batch=batch,
        kind=kind,
        file_name=path.name,
        content=path,
        user=batch.created_by,
        mapping=mapping,
    )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if result.has_errors():
        raise RuntimeError(f"{path.name}: {result.messages()[:5]}")
    return result.staged[kind], seconds, cpu


def _shape_files(kind: str, shape: str) -> tuple[dict[str, Path], dict | None]:
    customers = SIZES[kind]
    own = data.files(customers=customers, root=harness.DATA_DIR)
    if shape == "own":
        return own, None
    foreign = data.foreign_files(customers=customers, root=harness.DATA_DIR, kinds=(kind,))
    return foreign, data.MAPPINGS[kind]


def _one(kind: str, shape: str, *, run: int, turn: int) -> tuple[float, float]:
    """Stage ``kind`` in ``shape`` once, from an empty table: rows/s and CPU seconds."""
    files, mapping = _shape_files(kind, shape)
    _tables_empty()
    batch = new_batch(f"mapping-{kind}-{shape}-{run}-{turn}")
    if kind != "customers":  # the children's customers, untimed
        own = _shape_files("customers", "own")[0]
        _stage(kind="customers", path=own["customers"], batch=batch, mapping=None)
        _checkpoint()
    rows, seconds, cpu = _stage(kind=kind, path=files[kind], batch=batch, mapping=mapping)
    if rows != data.row_count(kind, SIZES[kind]):
        raise RuntimeError(f"{shape} {kind}: {rows} rows staged")
    return rows / seconds, cpu


def _compare(kind: str, *, run: int, figures: dict) -> None:
    """Own and mapped, in the order ``ORDERS[kind]`` (reversed on even runs); each shape's
    rate is the mean of its turns."""
    order = ORDERS[kind] if run % 2 else tuple(reversed(ORDERS[kind]))
    rates: dict[str, list[float]] = {shape: [] for shape in SHAPES}
    cpus: dict[str, list[float]] = {shape: [] for shape in SHAPES}
    for turn, shape in enumerate(order):
        rate, cpu = _one(kind, shape, run=run, turn=turn)
        rates[shape].append(rate)
        cpus[shape].append(cpu)
    figures[f"{kind}_rows"] = data.row_count(kind, SIZES[kind])
    for shape in SHAPES:
        figures[f"{kind}_{shape}_rows_per_s"] = sum(rates[shape]) / len(rates[shape])
        figures[f"{kind}_{shape}_cpu_s"] = sum(cpus[shape]) / len(cpus[shape])
    figures[f"{kind}_ratio"] = (
        figures[f"{kind}_mapped_rows_per_s"] / figures[f"{kind}_own_rows_per_s"]
    )
    figures[f"{kind}_cpu_ratio"] = figures[f"{kind}_own_cpu_s"] / figures[f"{kind}_mapped_cpu_s"]


def mapping_compare(*, run: int) -> dict:
    figures: dict = {"customers": SIZES["customers"]}
    for kind in SIZES:
        _compare(kind, run=run, figures=figures)
    _tables_empty()
    figures["peak_mb"] = own_peak_rss_mb()
    return figures


CASES = {"mapping_compare": mapping_compare}
