"""The table's rows for staging at scale: a million customers and a million transactions
through ``stage_file`` (``bench_big``), a mapped file against the same data in the
console's own headers (``bench_mapping``), the customers' history against the
customers (``bench_history``), and the dress rehearsal from the files to the sandbox
(``bench_rehearsal``); PostgreSQL only, one pass each."""

from __future__ import annotations

from tests.benchmarks.report_table import INFO, Row, check, fmt, median, runs, values

# The peak memory of one process that stages a file, and mapped ÷ own headers, rows/s.
PEAK_MB_TARGET = 300
MAPPED_RATIO_TARGET = 0.90
# Transactions ÷ the customers file, rows/s, staged the same way in the same run; the
# longest a request body of history may take to build, ms.
HISTORY_RATIO_TARGET = 1.0
HISTORY_BODY_MS_TARGET = 50
KINDS = ("customers", "balances", "devices", "metrics")


def big_rows(results: dict, db: str, label: str) -> list[Row]:
    found = results.get(db, {}).get("big_stage", [])
    if not found:
        return []
    customers = found[0]["customers"]
    head = f"stage_file, {customers:,} customers:"
    rows = []
    for kind in KINDS:
        speed = values(results, db, "big_stage", f"{kind}_rows_per_s")
        peaks = values(results, db, "big_stage", f"{kind}_peak_mb")
        rows.append(
            Row(
                "Staging at scale",
                label,
                f"{head} the {kind} file ({found[0][f'{kind}_rows']:,} rows), rows/s "
                f"(peak {fmt(median(peaks), 'MB')})",
                fmt(median(speed)),
                runs(speed),
            )
        )
    speed = values(results, db, "big_stage", "rows_per_s")
    rows.append(
        Row(
            "Staging at scale",
            label,
            f"{head} the four files ({found[0]['rows']:,} rows, one command each), rows/s",
            fmt(median(speed)),
            runs(speed),
        )
    )
    peaks = values(results, db, "big_stage", "peak_mb")
    rows.append(
        Row(
            "Staging at scale",
            label,
            f"{head} peak memory of the largest command's process",
            fmt(median(peaks), "MB"),
            runs(peaks),
            f"≤ {PEAK_MB_TARGET} MB",
            check(median(peaks) <= PEAK_MB_TARGET),
        )
    )
    if "transactions_rows" in found[0]:
        rows += transactions_rows(
            results, db, label, case="big_stage", group="Staging at scale", head=head
        )
    return rows


def transactions_rows(
    results: dict, db: str, label: str, *, case: str, group: str, head: str
) -> list[Row]:
    """A transactions file against the customers file, by the same command in the same run
    (``bench_big``, ``bench_history``): rows/s, their ratio and the command's peak memory."""
    found = results.get(db, {}).get(case, [])
    if not found or "transactions_ratio" not in found[0]:
        return []
    speed = values(results, db, case, "transactions_rows_per_s")
    reference = values(results, db, case, "customers_rows_per_s")
    ratios = values(results, db, case, "transactions_ratio")
    peaks = values(results, db, case, "transactions_peak_mb")
    n = f"{found[0]['transactions_rows']:,}"
    return [
        Row(group, label, f"{head} the transactions file ({n} rows, one per customer), rows/s",
            fmt(median(speed)), runs(speed)),
        Row(
            group,
            label,
            f"{head} transactions ÷ the customers file ({found[0]['customers_rows']:,} rows, "
            f"{fmt(median(reference))} rows/s), rows/s (same run)",
            f"{median(ratios):.0%}",
            " / ".join(f"{r:.0%}" for r in ratios),
            f"≥ {HISTORY_RATIO_TARGET:.0%}",
            check(median(ratios) >= HISTORY_RATIO_TARGET),
        ),
        Row(
            group,
            label,
            f"{head} peak memory of the transactions command's process",
            fmt(median(peaks), "MB"),
            runs(peaks),
            f"≤ {PEAK_MB_TARGET} MB",
            check(median(peaks) <= PEAK_MB_TARGET),
        ),
    ]  # fmt: skip


def history_rows(results: dict, db: str, label: str) -> list[Row]:
    found = results.get(db, {}).get("history", [])
    if not found:
        return []
    first = found[0]
    head = f"stage_file, {first['customers']:,} customers:"
    speed = values(results, db, "history", "customers_rows_per_s")
    peaks = values(results, db, "history", "customers_peak_mb")
    rows = [
        Row("History", label, f"{head} the customers file ({first['customers_rows']:,} rows), "
            f"rows/s (peak {fmt(median(peaks), 'MB')})", fmt(median(speed)), runs(speed))
    ]  # fmt: skip
    rows += transactions_rows(results, db, label, case="history", group="History", head=head)
    customers_ms = values(results, db, "history", "customers_body_ms")
    history_ms = values(results, db, "history", "transactions_body_ms")
    validation = values(results, db, "history", "validation_s")
    rows += [
        Row(
            "History",
            label,
            f"batch_validate of {first['customers']:,} customers with their children and "
            f"{first['transactions_rows']:,} transactions, s",
            fmt(median(validation), "s", 1),
            runs(validation, 1),
        ),
        Row(
            "History",
            label,
            f"Reference: one {first['customers_body_customers']:,}-customer request body "
            f"(customers_body, {first['customers_body_bytes']:,} bytes), ms",
            fmt(median(customers_ms), "ms", 1),
            runs(customers_ms, 1),
        ),
        Row(
            "History",
            label,
            f"One transactions request body: {first['transactions_body_rows']:,} transactions "
            f"of {first['transactions_body_customers']:,} customers (history_body, "
            f"{first['transactions_body_bytes']:,} bytes, "
            f"queries {first['transactions_body_queries']}), ms",
            fmt(median(history_ms), "ms", 1),
            runs(history_ms, 1),
            f"≤ {HISTORY_BODY_MS_TARGET} ms",
            check(median(history_ms) <= HISTORY_BODY_MS_TARGET),
        ),
    ]
    return rows


def _mapping_kind_rows(results: dict, db: str, label: str, kind: str, what: str) -> list[Row]:
    found = results.get(db, {}).get("mapping_compare", [])
    if not found or f"{kind}_ratio" not in found[0]:
        return []
    is_targeted = kind == "customers"
    mapped = values(results, db, "mapping_compare", f"{kind}_mapped_rows_per_s")
    own = values(results, db, "mapping_compare", f"{kind}_own_rows_per_s")
    ratios = values(results, db, "mapping_compare", f"{kind}_ratio")
    cpu = values(results, db, "mapping_compare", f"{kind}_cpu_ratio")
    n = f"{found[0][f'{kind}_rows']:,} {kind}"
    return [
        Row("Mapping", label, f"{n} through a mapping ({what}), rows/s", fmt(median(mapped)),
            runs(mapped)),
        Row("Mapping", label, f"the same {n} in the console's own headers, rows/s",
            fmt(median(own)), runs(own)),
        Row(
            "Mapping",
            label,
            f"{kind}: mapped ÷ own headers, rows/s (same run; CPU seconds "
            f"{median(cpu):.0%})",
            f"{median(ratios):.0%}",
            " / ".join(f"{r:.0%}" for r in ratios),
            f"≥ {MAPPED_RATIO_TARGET:.0%}" if is_targeted else "",
            check(median(ratios) >= MAPPED_RATIO_TARGET) if is_targeted else INFO,
        ),
    ]  # fmt: skip


def mapping_rows(results: dict, db: str, label: str) -> list[Row]:
    return [
        *_mapping_kind_rows(
            results, db, label, "customers",
            "Spanish headers, name split in two, day-first dates in Bogotá time, coded gender "
            "and status; read from disk as stage_file does",
        ),
        *_mapping_kind_rows(
            results, db, label, "balances", "comma decimals, day-first dates in Bogotá time"
        ),
    ]  # fmt: skip


def rehearsal_rows(results: dict, db: str, label: str, case: str = "rehearsal") -> list[Row]:
    """The dress rehearsal (``bench_rehearsal``), one row a phase and one end to end:
    seconds, with the phase's rate and peak memory in its description."""
    found = results.get(db, {}).get(case, [])
    if not found:
        return []

    def measured(key: str) -> list[float]:
        return values(results, db, case, key)

    def mb(key: str) -> str:
        return fmt(median(measured(key)), "MB")

    first = found[0]
    head = f"{first['customers']:,} customers:"
    peaks = ", ".join(f"{kind} {fmt(median(measured(f'stage_{kind}_peak_mb')))}" for kind in KINDS)
    phases = [
        (
            "stage_s",
            f"1. stage_file, the four files ({first['rows']:,} rows, one command each; "
            f"{fmt(median(measured('stage_rows_per_s')))} rows/s; peak {peaks} MB), s",
            1,
        ),
        ("validate_s", f"2. batch_validate (peak {mb('validate_peak_mb')}), s", 1),
        ("approve_s", f"3. batch_approve, by the reviewer (peak {mb('approve_peak_mb')}), s", 1),
        (
            "submit_s",
            f"4. batch_submit, to the job and its {first['chunks']:,} chunks committed "
            f"(peak {mb('submit_peak_mb')}), s",
            2,
        ),
        ("first_request_s", "5. job committed → first request at the sandbox, s", 2),
        (
            "send_s",
            f"6. sending: first request → job finished, {first['requests']:,} requests "
            f"({fmt(median(measured('send_customers_per_s')))} customers/s; a request "
            f"{fmt(median(measured('attempt_s')), 's', 2)} for the worker, of which "
            f"{fmt(median(measured('sandbox_request_s')), 's', 2)} in the sandbox's view, "
            f"medians; CPU worker {fmt(median(measured('send_worker_cpu_s')), 's')}, web "
            f"server {fmt(median(measured('send_web_cpu_s')), 's')}; peak worker "
            f"{mb('worker_peak_mb')}, web server {mb('web_peak_mb')}), s",
            1,
        ),
        ("total_s", "end to end: the first stage_file's start → job finished, s", 1),
    ]
    return [
        Row("Rehearsal", label, f"{head} {what}", fmt(median(measured(key)), "s", digits),
            runs(measured(key), digits))
        for key, what, digits in phases
    ]  # fmt: skip


def durations_text(results: dict) -> str:
    """How long the groups that ran once took, for the table's first line."""
    durations = results.get("durations", {})
    parts = [f"{group}: {seconds / 60:.1f}" for group, seconds in durations.items()]
    return f" (of which, in minutes, {', '.join(parts)})" if parts else ""
