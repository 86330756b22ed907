"""A large file's rows are checked against the contract ahead, in a forked process: the
import reports exactly what it reports without one, and stages exactly the same rows,
whatever that process does."""

from __future__ import annotations

import csv
import io
import itertools
import time
from pathlib import Path

import pytest
from django.db import connection

from customers.formats.text import CSV
from customers.models import OnProblems, StagedBalance, StagedCustomer, StagedDevice, StagedMetric
from customers.resources import ahead
from customers.staging import batch_stage_file

pytestmark = pytest.mark.django_db

ROWS = 12_000  # three blocks of rows (``WRITE_BLOCK``), the last one short

CUSTOMERS = ["id", "name", "email", "gender", "registration_date", "status"]
BALANCES = ["customer_id", "reward_id", "amount", "expiration_date", "brand_id", "issued_at"]
DEVICES = ["customer_id", "device_token", "platform", "model", "os_version", "created_at"]
METRICS = ["customer_id", "period", "from", "to", "spend_total", "number_of_purchases"]
MODELS = {
    "customers": StagedCustomer,
    "balances": StagedBalance,
    "devices": StagedDevice,
    "metrics": StagedMetric,
}


def _uuid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


# The customers' rows that break a rule only the contract's check of the row finds (an
# email's form: the file stays storable, the problems flaggable).
BROKEN = range(5, ROWS, 997)


def _row(kind: str, n: int) -> list[str]:
    """Row ``n`` of a file of ``kind``."""
    legacy_id = f"C{n:06d}"
    if kind == "customers":
        email = f"c{n}-at-example.com" if n in BROKEN else f"c{n}@example.com"
        return [legacy_id, f"Customer {n}", email, "FEMALE", "2023-11-07T05:31:56Z", "ACTIVE"]
    if kind == "balances":
        return [legacy_id, _uuid(n), "12.5", "2027-01-01T00:00:00Z", "brand-1", "2024-01-01"]
    if kind == "devices":
        return [legacy_id, f"fcm:{n}", "ios", "iPhone", "17.1", "2024-01-26T20:26:40Z"]
    return [legacy_id, "lifetime", "2019-01-01T00:00:00Z", "2025-01-01T00:00:00Z", "10.5", "3"]


def _file(tmp_path: Path, kind: str, rows: int = ROWS) -> Path:
    header = {"customers": CUSTOMERS, "balances": BALANCES, "devices": DEVICES}.get(kind, METRICS)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(_row(kind, n) for n in range(rows))
    path = tmp_path / f"{kind}.csv"
    path.write_text(text.getvalue())
    return path


def _stage(batch, user, path, kind, **options):
    return batch_stage_file(
        batch=batch, kind=kind, file_name=path.name, content=path, user=user, **options
    )


def _said(result) -> list[tuple]:
    return [(p.row, p.column, p.record, p.is_flaggable, p.message) for p in result.problems]


@pytest.fixture
def blocks_taken(monkeypatch) -> list[bool]:
    """Whether each block's rows came checked from the forked process."""
    taken: list[bool] = []
    prepare = ahead.RowChecksAhead.prepare

    def spy(self, block):
        prepare(self, block)
        taken.append(self.entries.ahead is not None)

    monkeypatch.setattr(ahead.RowChecksAhead, "prepare", spy)
    return taken


def _staged_customers(batch, user, folder: Path, settings):
    settings.MIGRATION_STAGING_CHECK_AHEAD_BYTES = 0
    folder.mkdir()
    path = _file(folder, "customers")
    assert _stage(batch, user, path, "customers", on_problems=OnProblems.FLAG).staged


@pytest.mark.parametrize("kind", ["customers", "balances", "devices", "metrics"])
def test_checked_ahead_or_not_a_file_says_and_stages_the_same(
    kind, batch, importer, tmp_path, settings, blocks_taken
):
    if kind != "customers":
        _staged_customers(batch, importer, tmp_path / "customers", settings)
    path = _file(tmp_path, kind)

    settings.MIGRATION_STAGING_CHECK_AHEAD_BYTES = 0
    alone = _stage(batch, importer, path, kind, dry_run=True)
    assert blocks_taken == []
    settings.MIGRATION_STAGING_CHECK_AHEAD_BYTES = 1
    checked_ahead = _stage(batch, importer, path, kind, dry_run=True)

    assert blocks_taken == [True, True, True]
    broken = BROKEN if kind == "customers" else []
    assert [problem.row - 2 for problem in alone.problems] == list(broken)
    assert all(problem.is_flaggable for problem in alone.problems)
    assert _said(checked_ahead) == _said(alone)
    assert checked_ahead.messages() == alone.messages()

    staged = _stage(batch, importer, path, kind, on_problems=OnProblems.FLAG)
    assert _said(staged) == _said(alone)
    assert staged.staged == {kind: ROWS}
    assert MODELS[kind].objects.filter(batch=batch).count() == ROWS


def _alone_then_ahead(batch, user, path, settings, monkeypatch, answers) -> object:
    """What staging ``path`` at dry run says without a forked process; then the forked
    process of the next import answers with ``answers(block, entries, own)`` (``own``: its
    own answers' function)."""
    settings.MIGRATION_STAGING_CHECK_AHEAD_BYTES = 0
    alone = _stage(batch, user, path, "customers", dry_run=True)
    own = ahead._answers
    monkeypatch.setattr(ahead, "_answers", lambda block, entries: answers(block, entries, own))
    settings.MIGRATION_STAGING_CHECK_AHEAD_BYTES = 1
    return alone


def _after_one_block(fault):
    """Answers as the forked process's own, but ``fault()`` first from the second block on."""
    count = itertools.count()

    def answers(block, entries, own):
        if next(count) >= 1:
            fault()
        return own(block, entries)

    return answers


def test_a_forked_process_that_dies_midway_changes_nothing_but_the_time(
    batch, importer, tmp_path, settings, monkeypatch, blocks_taken
):
    path = _file(tmp_path, "customers")

    def dies():
        raise MemoryError  # runs in the forked process, which ends

    alone = _alone_then_ahead(batch, importer, path, settings, monkeypatch, _after_one_block(dies))
    backend = _backend_pid()
    staged = _stage(batch, importer, path, "customers", on_problems=OnProblems.FLAG)

    assert blocks_taken == [True, False, False]
    assert _said(staged) == _said(alone)
    assert StagedCustomer.objects.filter(batch=batch).count() == ROWS
    # The import's own database session is the one it started with, still usable.
    assert _backend_pid() == backend


def test_answers_for_other_rows_are_not_taken(
    batch, importer, tmp_path, settings, monkeypatch, blocks_taken
):
    path = _file(tmp_path, "customers")

    def one_row_off(block, entries, own):
        numbers, _problems = own(block, entries)
        return tuple(n + 1 for n in numbers), {}

    alone = _alone_then_ahead(batch, importer, path, settings, monkeypatch, one_row_off)
    checked = _stage(batch, importer, path, "customers", dry_run=True)

    assert blocks_taken == [False, False, False]
    assert _said(checked) == _said(alone)


def test_small_files_and_open_files_are_checked_here(batch, importer, tmp_path, settings):
    path = _file(tmp_path, "customers", rows=50)
    settings.MIGRATION_STAGING_CHECK_AHEAD_BYTES = path.stat().st_size + 1
    assert not ahead.wanted(CSV().create_dataset(path))
    settings.MIGRATION_STAGING_CHECK_AHEAD_BYTES = path.stat().st_size
    assert ahead.wanted(CSV().create_dataset(path))
    assert ahead.wanted(CSV().create_dataset(path.read_bytes()))
    # A file object this process reads: another process reading it would move its place.
    with path.open("rb") as handle:
        assert not ahead.wanted(CSV().create_dataset(handle))
    settings.MIGRATION_STAGING_CHECK_AHEAD_BYTES = 0
    assert not ahead.wanted(CSV().create_dataset(path))


def _backend_pid() -> int | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_forked_process_that_stops_answering_is_given_up_on(
    batch, importer, tmp_path, settings, monkeypatch, blocks_taken
):
    path = _file(tmp_path, "customers")

    def stuck():
        time.sleep(3600)  # in the forked process, which the import ends

    alone = _alone_then_ahead(batch, importer, path, settings, monkeypatch, _after_one_block(stuck))
    monkeypatch.setattr(ahead, "ANSWER_WAIT_S", 0.5)
    started = time.monotonic()
    checked = _stage(batch, importer, path, "customers", dry_run=True)

    assert time.monotonic() - started < 20
    assert blocks_taken == [True, False, False]
    assert _said(checked) == _said(alone)
