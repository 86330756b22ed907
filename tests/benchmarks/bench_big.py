"""Staging a million customers: ``manage.py stage_file``, one file after another.

``big_stage`` stages the four files of 1,000,000 customers (``data.files``: 1,000,000
customers, 2,000,000 balances, 1,000,000 devices and 1,000,000 metrics rows, 5,000,000
rows; the balances file is 253 MB, so the upload limit is raised for it) into one new
batch, each with its own ``manage.py stage_file`` process, as an operator would from a
shell. Per kind: rows per second from the command's start to its end (Django's start
included), and the peak resident memory of that process alone (its own high-water mark,
read by ``os.wait4`` when it ends). Then the customers' history, a transactions file of
1,000,000 rows (one per customer, ``data.transactions_file``), by the same command into the
same batch: its rows per second against the customers file's, staged the same way in the
same run (the target: no fewer), and its own peak memory. The files are made on first use
and kept under var/bench/data (about 880 MB, two minutes to write).

Run only this group (about 6 minutes on the benchmark machine):

    make bench BENCH_ARGS="--only big --databases postgresql --output var/bench/big.md"
"""

from __future__ import annotations

import os
import subprocess
import time

from tests.benchmarks import data, harness
from tests.benchmarks.bench_staging import operator

CUSTOMERS = 1_000_000
# The balances file of a million customers is over the usual 200 MB limit.
UPLOAD_MAX_BYTES = 1024 * 1024 * 1024
STAGE_TIMEOUT_S = 1500.0


def stage_file_command(batch: str, kind: str, path, username: str) -> tuple[float, float, str]:
    """Run ``stage_file`` for one file: seconds, peak memory (MB) and its last line."""
    log_path = harness.RUN_DIR / f"stage-{kind}.log"
    harness.RUN_DIR.mkdir(parents=True, exist_ok=True)
    command = [
        harness.PYTHON, "manage.py", "stage_file", batch, kind, str(path), "--user", username,
    ]  # fmt: skip
    env = {**os.environ, "MIGRATION_UPLOAD_MAX_BYTES": str(UPLOAD_MAX_BYTES)}
    started = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own manage.py
            command, cwd=harness.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = started + STAGE_TIMEOUT_S
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                raise RuntimeError(f"stage_file {kind} took over {STAGE_TIMEOUT_S} s")
            time.sleep(0.05)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    output = log_path.read_text(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"stage_file {kind} failed:\n{output[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, output.strip().splitlines()[-1]


def big_stage(*, run: int) -> dict:
    files = data.files(customers=CUSTOMERS, root=harness.DATA_DIR)
    user = operator()
    batch = f"big-{run}"
    figures: dict = {"customers": CUSTOMERS, "rows": 0, "seconds": 0.0, "peak_mb": 0.0}
    for kind in data.KINDS:
        seconds, peak_mb, said = stage_file_command(batch, kind, files[kind], user.username)
        rows = data.row_count(kind, CUSTOMERS)
        if f"Staged {rows:,} {kind}" not in said:
            raise RuntimeError(f"stage_file {kind}: {said}")
        figures[f"{kind}_rows"] = rows
        figures[f"{kind}_rows_per_s"] = rows / seconds
        figures[f"{kind}_peak_mb"] = peak_mb
        figures["rows"] += rows
        figures["seconds"] += seconds
        figures["peak_mb"] = max(figures["peak_mb"], peak_mb)
    figures["rows_per_s"] = figures["rows"] / figures["seconds"]
    # The customers' history: one transaction each, after the four files (their total
    # and peak above are the four files' alone).
    path = data.transactions_file(customers=CUSTOMERS, per_customer=1, root=harness.DATA_DIR)
    seconds, peak_mb, said = stage_file_command(batch, "transactions", path, user.username)
    if f"Staged {CUSTOMERS:,} transactions" not in said:
        raise RuntimeError(f"stage_file transactions: {said}")
    figures["transactions_rows"] = CUSTOMERS
    figures["transactions_rows_per_s"] = CUSTOMERS / seconds
    figures["transactions_peak_mb"] = peak_mb
    figures["transactions_ratio"] = (
        figures["transactions_rows_per_s"] / figures["customers_rows_per_s"]
    )
    return figures


CASES = {"big_stage": big_stage}
