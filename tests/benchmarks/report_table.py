"""What every part of the benchmarks' table is made of: a row, the medians and runs as the
table writes them, a target's verdict, and the machine the figures were taken on."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
from dataclasses import dataclass
from importlib import metadata

from tests.benchmarks import harness

MET, NOT_MET, INFO = "met", "**not met**", ""


@dataclass
class Row:
    group: str
    database: str
    what: str
    median: str
    runs: str
    target: str = ""
    result: str = INFO


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt(value: float, unit: str = "", digits: int = 0) -> str:
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}".strip()


def runs(values: list[float], digits: int = 0) -> str:
    return " / ".join(f"{v:,.{digits}f}" for v in values)


def check(ok: bool) -> str:
    return MET if ok else NOT_MET


def values(results: dict, db: str, case: str, key: str) -> list[float]:
    return [run[key] for run in results.get(db, {}).get(case, []) if run.get(key) is not None]


def machine() -> list[str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    postgres = "unknown"
    try:
        import psycopg

        url = harness.databases()["postgresql"].url
        with psycopg.connect(url) as connection:
            postgres = connection.execute("SHOW server_version").fetchone()[0]
    except Exception as error:  # noqa: BLE001 - only the report's header is at stake
        postgres = f"not reachable ({type(error).__name__})"
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("Django", "django-import-export", "psycopg", "celery", "requests")
    )
    return [
        f"- Machine: {os.cpu_count()} cores ({cpu}), {memory_kb / 1024 / 1024:.1f} GiB memory, "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; {versions}",
        f"- PostgreSQL {postgres}; SQLite {sqlite3.sqlite_version}; Redis (broker and cache) "
        f"at {harness.redis_url()}",
    ]
