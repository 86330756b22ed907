"""The table's rows for staging at scale: a million customers through ``stage_file``
(``bench_big``) and a mapped file against the same data in the console's own headers
(``bench_mapping``); PostgreSQL only, one pass each."""

from __future__ import annotations

from tests.benchmarks.report_table import INFO, Row, check, fmt, median, runs, values

# The peak memory of one process that stages a file, and mapped ÷ own headers, rows/s.
PEAK_MB_TARGET = 300
MAPPED_RATIO_TARGET = 0.90
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


def durations_text(results: dict) -> str:
    """How long the groups that ran once took, for the table's first line."""
    durations = results.get("durations", {})
    parts = [f"{group}: {seconds / 60:.1f}" for group, seconds in durations.items()]
    return f" (of which, in minutes, {', '.join(parts)})" if parts else ""
