"""The contract's check of each row of a large file, run ahead in a second process.

Staging spends a fifth to a quarter of its time checking each row's entry with the
contract (``EntryCheck``), a function of the row alone. For a file that another process
can read on its own (a path on disk, or bytes: not a file object this process is reading),
a forked copy of this process reads and parses the file too and runs those checks, a
block of rows at a time, while this one checks across rows and writes; on two cores the
import takes about a quarter less time (``MIGRATION_STAGING_CHECK_AHEAD_BYTES``: the
smallest file it pays for).

The forked process sends, for each block, the numbers of its rows and the problems it
found in them (rows with a problem are rare). This process takes a block's answers only
when its own block holds exactly those rows, and checks the block itself otherwise, or
when the forked process stopped: the problems are the same either way, only sooner. The
forked process touches no database connection, cache or log, and ends with ``os._exit``,
so nothing it inherited is closed or flushed on its way out; one that has not answered a
block within ``ANSWER_WAIT_S`` is ended and the rest checked here.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from django.conf import settings

from customers.formats import SourceTable
from customers.formats.base import FileSource

if TYPE_CHECKING:
    from customers.resources.checks import EntryCheck

# What the forked process sends after its last block.
_END = "end"
# How long to wait for a block's answers (they take well under a second): a forked process
# that is stuck (a lock another thread held when it was forked) is given up on.
ANSWER_WAIT_S = 30.0


def _readable_apart(dataset: Any) -> int | None:
    """The size in bytes of the file behind ``dataset`` when another process can read it
    on its own (its rows come from a path or from bytes), else None."""
    if not isinstance(dataset, SourceTable):
        return None
    rows = getattr(dataset, "_rows", None)
    sources = [arg for arg in getattr(rows, "args", ()) if isinstance(arg, FileSource)]
    if len(sources) != 1:
        return None
    content = sources[0].content
    if isinstance(content, bytes | bytearray | memoryview):
        return len(content)
    if isinstance(content, os.PathLike):
        try:
            return os.path.getsize(content)
        except OSError:
            return None
    return None


def wanted(dataset: Any) -> bool:
    """Whether ``dataset``'s rows are checked ahead: a file readable apart, at least
    ``MIGRATION_STAGING_CHECK_AHEAD_BYTES`` big (0: never)."""
    threshold = settings.MIGRATION_STAGING_CHECK_AHEAD_BYTES
    if threshold <= 0 or not hasattr(os, "fork"):
        return False
    size = _readable_apart(dataset)
    return size is not None and size >= threshold


class _Collected:
    """Where the forked process's parsing reports what it reads (problems of cells,
    counts): nowhere, as the parent reports all that itself, from its own reading."""

    def __init__(self) -> None:
        self.record_of = None
        self.reading = None
        self.row_count = 0
        self.sample_rows: list = []

    def add_problem(self, *args, **kwargs) -> None:
        """Problems of parsing are the parent's to report."""


class RowChecksAhead:
    """The forked process checking a file's rows, and what this process reads of it."""

    def __init__(self, entries: EntryCheck) -> None:
        self.entries = entries
        self.pid: int | None = None
        # The pipe's end this process reads, a file descriptor.
        self.pipe: int | None = None

    @classmethod
    @contextlib.contextmanager
    def running(
        cls, *, resource: Any, dataset: Any, columns: list, entries: EntryCheck | None
    ) -> Iterator[RowChecksAhead | None]:
        """A forked process checking ``dataset``'s rows as ``resource`` parses them, for as
        long as the block runs; None when the file does not call for one."""
        if entries is None or not wanted(dataset):
            yield None
            return
        ahead = cls(entries)
        ahead._start(resource, dataset, columns)
        try:
            yield ahead
        finally:
            ahead._stop()

    def _start(self, resource: Any, dataset: Any, columns: list) -> None:
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            return
        if pid == 0:  # pragma: no cover - the forked process; its answers are tested
            os.close(read_end)
            _child(write_end, resource, dataset, columns, self.entries)
        os.close(write_end)
        self.pid = pid
        self.pipe = read_end

    def prepare(self, block: list[tuple[int, dict]]) -> None:
        """Before ``block`` is checked: hand its rows' answers to the entry check, when
        the forked process has them for exactly these rows."""
        self.entries.ahead = None
        rows = tuple(row_number for row_number, _row in block)
        answer = self._next()
        if answer is not None and answer[0] == rows:
            self.entries.ahead = (frozenset(rows), answer[1])
            return
        if answer is not None:
            self._stop()  # out of step: the rest is checked here

    def _next(self) -> tuple[tuple[int, ...], dict] | None:
        message = None if self.pipe is None else _receive(self.pipe)
        if not isinstance(message, tuple) or len(message) != 2:
            self._stop()
            return None
        return message

    def _stop(self) -> None:
        """End the forked process (it may still be reading) and close the pipe."""
        self.entries.ahead = None
        if self.pipe is not None:
            os.close(self.pipe)
            self.pipe = None
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = None


def _child(
    write_end: int, resource: Any, dataset: Any, columns: list, entries: EntryCheck
) -> None:  # pragma: no cover - runs in the forked process
    """Parse and check the rows as the parent does, send each block's answers, and end
    without running any of the inherited clean-up (``os._exit``)."""
    status = 1
    try:
        resource.progress = None  # the parent tells the progress
        parsed = resource._parsed_rows(dataset, columns, _Collected())
        for block in resource._blocks(parsed):
            _send(write_end, _answers(block, entries))
        _send(write_end, _END)
        status = 0
    except BaseException:  # noqa: BLE001, S110 - the parent checks the rows itself
        pass
    finally:
        os._exit(status)


def _send(pipe: int, message: object) -> None:  # pragma: no cover - the forked process
    """Write ``message`` whole: its length in 8 bytes, then its pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(len(data).to_bytes(8, "big") + data)
    while view:
        view = view[os.write(pipe, view) :]


def _receive(pipe: int) -> object | None:
    """The next message, or None when the forked process ended, sent something broken or
    said nothing for ``ANSWER_WAIT_S``."""
    deadline = time.monotonic() + ANSWER_WAIT_S
    header = _read(pipe, 8, deadline)
    if header is None:
        return None
    data = _read(pipe, int.from_bytes(header, "big"), deadline)
    try:
        return None if data is None else pickle.loads(data)  # noqa: S301 - our own process
    except Exception:  # noqa: BLE001 - a broken message: the rows are checked here
        return None


def _read(pipe: int, size: int, deadline: float) -> bytes | None:
    """Exactly ``size`` bytes, or None at the end of the pipe or past ``deadline``."""
    data = bytearray()
    while len(data) < size:
        ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(pipe, size - len(data)) if ready else b""
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _answers(block: Iterable[tuple[int, dict]], entries: EntryCheck) -> tuple:
    """The block's row numbers, and the contract's problems by row for rows that have any."""
    numbers = []
    problems = {}
    for row_number, row in block:
        numbers.append(row_number)
        found = entries.found(row)
        if found:
            problems[row_number] = found
    return tuple(numbers), problems
