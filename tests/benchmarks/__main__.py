"""``make bench``: every benchmark, three runs each, on PostgreSQL and SQLite; the medians
go to docs/BENCHMARKS.md as a table with each target marked met or not met.

    python -m tests.benchmarks [--databases postgresql,sqlite] [--only staging,history] [--runs 3]
        [--output docs/BENCHMARKS.md]

Order of one run on a database: the console's staging through the admin, then validation,
payload and sending on the batch it staged (``pipeline``), then the reference staging
cases; each case starts from empty tables. Then, on PostgreSQL, one pass each: pacing (its
cases side by side take about four minutes, see bench_pacing), a mapped file against the
same data in the console's own headers (``mapping``, about four minutes, bench_mapping),
a transactions file against the customers file and the first request body of each
(``history``, about two minutes, bench_history), a million customers and a million
transactions through ``stage_file`` (``big``, about six minutes, bench_big) and the dress
rehearsal, 100,000 customers from the files to the sandbox through the management commands
(``rehearsal``, about a minute, bench_rehearsal). The admin pages come last.
The rehearsal of 1,000,000 customers (``rehearsal-big``, about 20 minutes) runs only when
``--only`` names it.
Raw figures of every run are kept in var/bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tests.benchmarks import harness, report

RESULTS_PATH = harness.VAR_DIR / "results.json"
GROUPS = ("staging", "pipeline", "pacing", "mapping", "history", "big", "rehearsal", "admin")
# Groups that run only when --only names them.
OPT_IN_GROUPS = ("rehearsal-big",)
# Groups run once on PostgreSQL, with the longest a case of theirs may take.
ONCE_ON_POSTGRESQL = {"pacing": ("pacing", 900), "mapping": ("mapping_compare", 1200)}
ONCE_ON_POSTGRESQL["history"] = ("history", 900)
ONCE_ON_POSTGRESQL["big"] = ("big_stage", 2400)
ONCE_ON_POSTGRESQL["rehearsal"] = ("rehearsal", 1800)
ONCE_ON_POSTGRESQL["rehearsal-big"] = ("rehearsal_big", 3600)
REFERENCE_CASES = (
    "staging_floor",
    "staging_copy",
    "staging_ie_default",
    "staging_ie_bulk",
    "staging_ie_bulk_init",
)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _case(
    results: dict, database: harness.Database, case: str, run: int, timeout_s: float = 900
) -> None:
    started = time.monotonic()
    figures = harness.case_run(database, case, run=run, timeout_s=timeout_s)
    results.setdefault(database.key, {}).setdefault(case, []).append(figures)
    # Kept as they come, so an interrupted run still leaves its figures.
    RESULTS_PATH.write_text(json.dumps(results, indent=1))
    _say(f"  {database.label} {case} run {run}: {time.monotonic() - started:.0f} s")


def run_database(
    database: harness.Database, *, groups: tuple[str, ...], runs: int, results: dict
) -> None:
    _say(f"{database.label}: preparing {database.url}")
    harness.database_prepare(database)
    if "staging" in groups or "pipeline" in groups:
        for run in range(1, runs + 1):
            harness.database_reset(database)
            if "staging" in groups or "pipeline" in groups:
                _case(results, database, "staging_console", run)
            if "pipeline" in groups:
                _case(results, database, "pipeline", run)
            if "staging" not in groups:
                continue
            for case in REFERENCE_CASES:
                if case == "staging_copy" and not database.is_postgresql:
                    continue
                harness.database_reset(database)
                _case(results, database, case, run)
    for group, (case, timeout_s) in ONCE_ON_POSTGRESQL.items():
        if group in groups and database.is_postgresql:
            started = time.monotonic()
            harness.database_reset(database)
            _case(results, database, case, 1, timeout_s)
            results.setdefault("durations", {})[group] = time.monotonic() - started
    if "admin" in groups:
        harness.database_reset(database)
        _case(results, database, "admin_setup", 1)
        for run in range(1, runs + 1):
            _case(results, database, "admin", run)
    harness.database_reset(database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--databases", default="postgresql,sqlite")
    parser.add_argument("--only", default=",".join(GROUPS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=report.OUTPUT)
    args = parser.parse_args()
    groups = tuple(g for g in args.only.split(",") if g)
    unknown = set(groups) - set(GROUPS) - set(OPT_IN_GROUPS)
    if unknown:
        parser.error(f"unknown groups: {', '.join(sorted(unknown))}")
    databases = harness.databases()
    started = time.monotonic()
    results: dict = {}
    for key in args.databases.split(","):
        run_database(databases[key], groups=groups, runs=args.runs, results=results)
    elapsed = time.monotonic() - started
    RESULTS_PATH.write_text(json.dumps(results, indent=1))
    table = report.write(results, runs=args.runs, elapsed_s=elapsed, output=args.output)
    _say(table)


if __name__ == "__main__":
    main()
