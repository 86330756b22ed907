"""The benchmarks' table: medians of the runs, each target marked met or not met, written
to docs/BENCHMARKS.md with the machine, the date and the versions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.benchmarks import harness, report_streaming
from tests.benchmarks.report_table import INFO, MET, Row, machine
from tests.benchmarks.report_table import check as _check
from tests.benchmarks.report_table import fmt as _fmt
from tests.benchmarks.report_table import median as _median
from tests.benchmarks.report_table import runs as _runs
from tests.benchmarks.report_table import values as _values

OUTPUT = harness.BASE_DIR / "docs" / "BENCHMARKS.md"


def _staging_rows(results: dict, db: str, label: str) -> list[Row]:
    rows: list[Row] = []
    console = results.get(db, {}).get("staging_console", [])
    if not console:
        return rows
    targeted = db == "postgresql"
    n = console[0]["rows"]
    speed = _values(results, db, "staging_console", "rows_per_s")
    rows.append(
        Row(
            "Staging",
            label,
            f"Console: admin import of {n:,} rows (4 files; checked, confirmed and staged "
            "by a worker), rows/s",
            _fmt(_median(speed)),
            _runs(speed),
        )
    )
    customers = _values(results, db, "staging_console", "customers_rows_per_s")
    rows.append(
        Row(
            "Staging",
            label,
            "Console: the customers file alone, rows/s",
            _fmt(_median(customers)),
            _runs(customers),
        )
    )
    floor = _values(results, db, "staging_floor", "rows_per_s")
    if floor:
        rows.append(
            Row(
                "Staging",
                label,
                "Floor: plain csv + bulk_create, same 4 files, one pass, rows/s",
                _fmt(_median(floor)),
                _runs(floor),
            )
        )
        floor_customers = _values(results, db, "staging_floor", "customers_rows_per_s")
        rows.append(
            Row(
                "Staging",
                label,
                "Floor: the customers file alone, rows/s",
                _fmt(_median(floor_customers)),
                _runs(floor_customers),
            )
        )
    copy = _values(results, db, "staging_copy", "rows_per_s")
    if copy:
        rows.append(
            Row(
                "Staging",
                label,
                "PostgreSQL COPY through psycopg 3, same 4 files, one pass, rows/s",
                _fmt(_median(copy)),
                _runs(copy),
            )
        )
    names = {
        "staging_ie_default": "django-import-export default resource",
        "staging_ie_bulk": "django-import-export use_bulk + skip_diff",
        "staging_ie_bulk_init": "django-import-export use_bulk + skip_diff + force_init_instance",
    }
    for case, name in names.items():
        found = results.get(db, {}).get(case, [])
        if not found:
            continue
        speed = _values(results, db, case, "rows_per_s")
        peaks = _values(results, db, case, "peak_mb")
        rows.append(
            Row(
                "Staging",
                label,
                f"{name}: customers CSV ({found[0]['rows']:,} rows), admin preview + confirm, "
                f"rows/s (peak {_fmt(_median(peaks), 'MB')})",
                _fmt(_median(speed)),
                _runs(speed),
            )
        )
    by_run = {
        case: results.get(db, {}).get(case, [])
        for case in ("staging_console", "staging_floor", "staging_ie_default")
    }
    pairs = list(zip(by_run["staging_console"], by_run["staging_floor"], strict=False))
    if pairs:
        ratios = [c["rows_per_s"] / f["rows_per_s"] for c, f in pairs]
        ratio = _median(ratios)
        rows.append(
            Row(
                "Staging",
                label,
                "Console ÷ floor, rows/s (same run)",
                f"{ratio:.0%}",
                " / ".join(f"{r:.0%}" for r in ratios),
                "≥ 75%" if targeted else "",
                _check(ratio >= 0.75) if targeted else INFO,
            )
        )
    pairs = list(zip(by_run["staging_console"], by_run["staging_ie_default"], strict=False))
    if pairs:
        ratios = [c["rows_per_s"] / d["rows_per_s"] for c, d in pairs]
        ratio = _median(ratios)
        rows.append(
            Row(
                "Staging",
                label,
                "Console ÷ django-import-export default, rows/s (same run)",
                f"{ratio:.1f}x",
                " / ".join(f"{r:.1f}x" for r in ratios),
                "≥ 40x" if targeted else "",
                _check(ratio >= 40) if targeted else INFO,
            )
        )
        customer_ratios = [c["customers_rows_per_s"] / d["rows_per_s"] for c, d in pairs]
        rows.append(
            Row(
                "Staging",
                label,
                "Console's customers file alone ÷ django-import-export default (same file)",
                f"{_median(customer_ratios):.1f}x",
                " / ".join(f"{r:.1f}x" for r in customer_ratios),
            )
        )
    web = _values(results, db, "staging_console", "web_peak_mb")
    worker = _values(results, db, "staging_console", "worker_peak_mb")
    peaks = _values(results, db, "staging_console", "peak_mb")
    rows.append(
        Row(
            "Staging",
            label,
            "Console: peak memory of a process (web server "
            f"{_fmt(_median(web), 'MB')}, worker {_fmt(_median(worker), 'MB')})",
            _fmt(_median(peaks), "MB"),
            _runs(peaks),
            "≤ 300 MB" if targeted else "",
            _check(_median(peaks) <= 300) if targeted else INFO,
        )
    )
    return rows


def _pipeline_rows(results: dict, db: str, label: str) -> list[Row]:
    found = results.get(db, {}).get("pipeline", [])
    if not found:
        return []
    targeted = db == "postgresql"
    customers = found[0]["customers"]
    rows: list[Row] = []
    validation = _values(results, db, "pipeline", "validation_s")
    rows.append(
        Row(
            "Validation",
            label,
            f"batch_validate of {customers:,} staged customers (with their children), s",
            _fmt(_median(validation), "s", 1),
            _runs(validation, 1),
            "≤ 15 s" if targeted else "",
            _check(_median(validation) <= 15) if targeted else INFO,
        )
    )
    payload = _values(results, db, "pipeline", "payload_ms")
    rows.append(
        Row(
            "Payload",
            label,
            f"One 1000-customer request body from staging ({found[0]['payload_bytes']:,} bytes), "
            "ms",
            _fmt(_median(payload), "ms", 1),
            _runs(payload, 1),
            "≤ 50 ms" if targeted else "",
            _check(_median(payload) <= 50) if targeted else INFO,
        )
    )
    queries = found[-1]["payload_queries"]
    constant = all(run["payload_queries_constant"] for run in found)
    rows.append(
        Row(
            "Payload",
            label,
            "Queries for a body of " + ", ".join(f"{size}" for size in queries) + " customers",
            " / ".join(str(q) for q in queries.values()),
            "same in every run" if constant else "varies",
            "does not grow" if targeted else "",
            _check(constant) if targeted else INFO,
        )
    )
    sends = _values(results, db, "pipeline", "send_s")
    if sends:
        reference = _values(results, db, "pipeline", "reference_send_s")
        ratios = _values(results, db, "pipeline", "send_ratio")
        rows.append(
            Row(
                "Sending",
                label,
                f"Console: submit and send {customers:,} customers to the sandbox, real worker, "
                "no pacing, s",
                _fmt(_median(sends), "s", 1),
                _runs(sends, 1),
            )
        )
        rows.append(
            Row(
                "Sending",
                label,
                "Reference: plain script (csv, group children, POST 1000 a time with requests), s",
                _fmt(_median(reference), "s", 1),
                _runs(reference, 1),
            )
        )
        rows.append(
            Row(
                "Sending",
                label,
                "Console ÷ reference, time (same run)",
                f"{_median(ratios):.2f}x",
                _runs(ratios, 2),
                "≤ 1.3x",
                _check(_median(ratios) <= 1.3),
            )
        )
    return rows


# Efficiency targets of the pacing cases, by interval and whether the case adds jitter.
PACING_TARGETS = {(0.2, False): 95.0, (5.0, True): 98.0}


def _pacing_rows(results: dict, db: str, label: str) -> list[Row]:
    found = results.get(db, {}).get("pacing", [])
    if not found:
        return []
    by_case: dict[str, list[dict]] = {}
    for run in found:
        for case in run.get("cases", []):
            by_case.setdefault(case["name"], []).append(case)
    rows: list[Row] = []
    for runs in by_case.values():
        case = runs[0]

        def values(key: str, runs: list[dict] = runs) -> list[float]:
            return [run[key] for run in runs if run.get(key) is not None]

        percent = values("efficiency_percent")
        limited = values("rate_limited")
        min_gaps = values("min_gap_s")
        mean_gaps = values("mean_gap_s")
        jitter = f", jitter {case['jitter_s'] * 1000:g} ms" if case["jitter_s"] else ""
        setup = (
            f"Interval {case['interval_s']:g} s, {case['concurrency']} worker processes, "
            f"answers in {case['slow_s']:g} s{jitter}"
        )
        target = PACING_TARGETS.get((case["interval_s"], bool(case["jitter_s"])))
        rows.append(
            Row(
                "Pacing",
                label,
                f"{setup}: sent ÷ allowed in {case['window_s']:g} s from the first arrival "
                f"(sent {_runs(values('requests'))}, allowed {_runs(values('allowed'), 1)}; "
                f"gap min {_fmt(_median(min_gaps) * 1000, 'ms', 1) if min_gaps else '-'}, "
                f"mean {_fmt(_median(mean_gaps) * 1000, 'ms', 1) if mean_gaps else '-'})",
                f"{_median(percent):.1f}%",
                _runs(percent, 1),
                f"≥ {target:g}%" if target else "",
                _check(_median(percent) >= target) if target else INFO,
            )
        )
        rows.append(
            Row(
                "Pacing",
                label,
                f"{setup}: 429 answers from the sandbox's rate limiter",
                _fmt(_median(limited)),
                _runs(limited),
                "0",
                _check(max(limited) == 0),
            )
        )
    return rows


def _admin_rows(results: dict, db: str, label: str) -> list[Row]:
    found = results.get(db, {}).get("admin", [])
    if not found:
        return []
    targeted = db == "postgresql"
    queries = _values(results, db, "admin", "job_page_queries")
    job_ms = _values(results, db, "admin", "job_page_ms")
    list_ms = _values(results, db, "admin", "customer_list_ms")
    list_queries = _values(results, db, "admin", "customer_list_queries")
    return [
        Row(
            "Admin",
            label,
            f"Job page of a job with {found[0]['chunks']:,} chunks: queries",
            _fmt(_median(queries)),
            _runs(queries),
            "≤ 15" if targeted else "",
            _check(_median(queries) <= 15) if targeted else INFO,
        ),
        Row(
            "Admin",
            label,
            "Job page of a job with 1,000 chunks: time to render, ms",
            _fmt(_median(job_ms), "ms"),
            _runs(job_ms),
            "≤ 300 ms" if targeted else "",
            _check(_median(job_ms) <= 300) if targeted else INFO,
        ),
        Row(
            "Admin",
            label,
            f"Staged-customer list of a {found[0]['customers']:,}-customer batch, ms "
            f"({_fmt(_median(list_queries))} queries)",
            _fmt(_median(list_ms), "ms"),
            _runs(list_ms),
            "≤ 1,000 ms" if targeted else "",
            _check(_median(list_ms) <= 1000) if targeted else INFO,
        ),
    ]


def render(results: dict, *, runs: int, elapsed_s: float) -> str:
    rows: list[Row] = []
    labels = {key: db.label for key, db in harness.databases().items()}
    for key, label in labels.items():
        rows += _staging_rows(results, key, label)
    for key, label in labels.items():
        rows += _pipeline_rows(results, key, label)
    for key, label in labels.items():
        rows += _pacing_rows(results, key, label)
    rows += report_streaming.mapping_rows(results, "postgresql", labels["postgresql"])
    rows += report_streaming.history_rows(results, "postgresql", labels["postgresql"])
    rows += report_streaming.big_rows(results, "postgresql", labels["postgresql"])
    for case in ("rehearsal", "rehearsal_big"):
        rows += report_streaming.rehearsal_rows(results, "postgresql", labels["postgresql"], case)
    for key, label in labels.items():
        rows += _admin_rows(results, key, label)
    targets = [row for row in rows if row.result]
    met = sum(row.result == MET for row in targets)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {now}, in {elapsed_s / 60:.1f} minutes"
        f"{report_streaming.durations_text(results)}. Each figure is the "
        f"median of {runs} runs (every run's value follows it); ratios are taken within a run, "
        "where the console and its reference ran side by side, then their median.",
        "",
        *machine(),
        "",
        f"**Targets met: {met} of {len(targets)}.**",
        "",
        "| Benchmark | Database | What is measured | Median | Runs | Target | Result |",
        "|---|---|---|---:|---|---|---|",
    ]
    for row in rows:
        cells = [row.group, row.database, row.what, row.median, row.runs, row.target, row.result]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines += ["", Path(__file__).with_name("NOTES.md").read_text().strip(), ""]
    return "\n".join(lines)


def write(results: dict, *, runs: int, elapsed_s: float, output: Path = OUTPUT) -> str:
    text = render(results, runs=runs, elapsed_s=elapsed_s)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    return text
