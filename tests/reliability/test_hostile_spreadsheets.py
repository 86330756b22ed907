"""Hostile workbooks through ``manage.py stage_file``, in a process of its own whose peak
memory is measured: each is refused with a message that says why, and the process never
grows past 300 MB (a plain ``stage_file`` starts at about 95 MB).

The workbooks are written here a block at a time (a 400 MB part never is in this process's
memory): a shared string of 400 MB beside an incompressible member that keeps the whole
archive's compression ratio ordinary; a 400 MB cell in the sheet that compresses like
text (96 times, under the ratio any part may have); a header row of a million cells.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from customers.models import StagedCustomer, StagingBatch
from tests.customers.importing import preview
from tests.customers.workbooks import Shared, row, write_workbook
from tests.factories import UserFactory
from tests.reliability.conftest import figure
from tests.worker import worker_environment

MB = 1024 * 1024
PEAK_MB = 300
TIMEOUT_S = 120
HEADERS = ("id", "name", "email")


def text_blocks(size: int, *, varied: bool) -> Iterator[bytes]:
    """``size`` bytes of one text, 1 MB at a time: "a" repeated (it compresses about 230
    times), or with a random letter every 250 bytes (about 96 times)."""
    block = bytearray(b"a" * MB)
    if varied:
        letters = random.Random(7)  # noqa: S311 - a fixed file, not a secret
        for at in range(0, MB, 250):
            block[at] = letters.choice(b"bcdefghijklmnopqrstuvwxyz")
    block = bytes(block)
    for start in range(0, size, MB):
        yield block[: min(MB, size - start)]


def shared_string_bomb(path: Path) -> None:
    write_workbook(
        path,
        sheet_data=[row(1, *HEADERS), row(2, "legacy-1", Shared(0), "a@example.com")],
        shared_strings=[b"<si><t>", *text_blocks(400 * MB, varied=False), b"</t></si>"],
        members={"xl/media/padding.bin": os.urandom(8 * MB)},
        compresslevel=1,
    )


def long_cell(path: Path) -> None:
    cell = b'<row r="2"><c r="A2" t="inlineStr"><is><t>'
    write_workbook(
        path,
        sheet_head=b'<dimension ref="A1:C2"/>',
        sheet_data=[
            row(1, *HEADERS),
            cell,
            *text_blocks(400 * MB, varied=True),
            b"</t></is></c></row>",
        ],
        compresslevel=1,
    )


def wide_header(path: Path) -> None:
    cells = (
        b"".join(b"<c><v>%d</v></c>" % n for n in range(s, s + 100_000))
        for s in range(0, 1_000_000, 100_000)
    )
    write_workbook(path, sheet_data=[b'<row r="1">', *cells, b"</row>", row(2, "legacy-1")])


@dataclass(frozen=True)
class Hostile:
    label: str
    build: Callable[[Path], None]
    refused: str


HOSTILE = [
    Hostile(
        "a 400 MB shared string beside incompressible padding",
        shared_string_bomb,
        "The workbook's part “xl/sharedStrings.xml” expands 229 times when opened (to 400 MB)",
    ),
    Hostile(
        "a 400 MB cell that compresses like text",
        long_cell,
        "The workbook's part “xl/worksheets/sheet1.xml” holds a text longer than 64.0\xa0KB",
    ),
    Hostile(
        "a header of a million cells",
        wide_header,
        "A row of the workbook's part “xl/worksheets/sheet1.xml” holds more than 250,000 XML",
    ),
]


# A process's peak memory (``ru_maxrss``) keeps that of the process it was forked from, so
# ``stage_file`` is forked from this small launcher, which reports the peak of its child.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
_pid, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass(frozen=True)
class Run:
    exit_status: int
    peak_mb: float
    took_s: float
    output: str


def stage_file(path: Path, *, user: str) -> Run:
    """``manage.py stage_file`` on the test database, and its peak resident memory."""
    report = path.with_suffix(".peak")
    manage = [str(Path(settings.BASE_DIR) / "manage.py"), "stage_file", "hostile", "customers"]
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(report), *manage, str(path), "--user", user],
        cwd=settings.BASE_DIR,
        env=worker_environment(base_url="http://127.0.0.1:9", env={}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
    return Run(
        exit_status=process.returncode,
        peak_mb=round(int(report.read_text() or 0) / 1024, 1),  # kilobytes on Linux
        took_s=round(time.monotonic() - started, 2),
        output=output.decode(errors="replace"),
    )


@pytest.fixture
def stager(transactional_db):
    return UserFactory(username="hostile-stager", perms=["customers.import_stagingbatch"])


@pytest.mark.parametrize("hostile", HOSTILE, ids=[h.label for h in HOSTILE])
def test_hostile_spreadsheet_is_refused_within_300_mb(hostile, stager, tmp_path):
    path = tmp_path / "hostile.xlsx"
    hostile.build(path)

    run = stage_file(path, user=stager.username)

    figures = figure(
        "test_hostile_spreadsheet_is_refused_within_300_mb",
        file=hostile.label,
        size_mb=round(path.stat().st_size / MB, 1),
        peak_mb=run.peak_mb,
        took_s=run.took_s,
        exit_status=run.exit_status,
    )
    assert run.exit_status == 1, f"{figures}\n{run.output[-3000:]}"
    assert hostile.refused in run.output, f"{figures}\n{run.output[-3000:]}"
    assert "nothing was staged" in run.output, figures
    assert run.peak_mb <= PEAK_MB, figures
    assert not StagingBatch.objects.filter(name="hostile").exists()


def test_a_hostile_spreadsheet_is_refused_by_the_admin_and_the_api_without_being_held(
    client, as_user, upload, importer, batch, tmp_path
):
    path = tmp_path / "long-cell.xlsx"
    long_cell(path)
    content = path.read_bytes()
    client.force_login(importer)
    refused = "holds a text longer than 64.0\xa0KB"

    tracemalloc.start()
    try:
        page = preview(client, batch, "customers", "long-cell.xlsx", content)
        answer = upload(as_user(importer), batch.pk, "customers", "long-cell.xlsx", content)
        peak_mb = tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()

    problems = [str(problem) for problem in page.context["result"].problems]
    assert any(refused in problem for problem in problems), problems
    assert answer.status_code == 400
    assert any(refused in line for line in answer.json()["fields"]["file"]), answer.json()
    assert not StagedCustomer.objects.filter(batch=batch).exists()
    # The upload itself (4 MB) is held, twice by the admin; none of the 400 MB it inflates to.
    assert peak_mb < 60, f"peak {peak_mb:.0f} MB"
