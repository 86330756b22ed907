"""What a workbook may cost: its archive judged member by member from the zip's directory
before anything is inflated, and every part openpyxl reads scanned as it is inflated.

Why the scan is clever. An XLSX is XML in a zip, and an XML parser holds a whole text node,
a whole comment and a whole element (until openpyxl clears it) in memory: one 400 MB cell,
or a row of a million cells, costs its full size however lazily the rows are read, and a
zip's compression ratio can be honest while a member is not. So every part openpyxl opens
is read through :class:`GuardedStream`, which hands :class:`PartScan` each block before the
parser sees it. The scan works on the bytes with ``find`` and ``count`` (C speed; about 6
µs a row of 12 cells, where openpyxl takes 270): between two ``<`` is a tag or a text, so
a run of bytes without ``<`` longer than a cell may be is refused, wherever the blocks cut
it; rows are counted, and the bytes and elements of each row, and of the rest of the part
(what openpyxl never empties), are bounded. Comments, CDATA and processing instructions are
refused, since a ``<`` inside them would hide a run. Nothing is kept but counters and,
between two blocks, the end of a tag cut in two. The shared strings' own reader bounds each
of their texts (``xlsx_strings``).
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

from django.conf import settings
from django.utils.formats import number_format

from console.messages import FileSize, Message
from customers.formats.base import (
    ERR_XLSX_CELL_TOO_LONG,
    ERR_XLSX_ENTITIES,
    ERR_XLSX_MARKUP,
    ERR_XLSX_NOT_WORKBOOK,
    ERR_XLSX_NOT_ZIP,
    ERR_XLSX_PART_RATIO,
    ERR_XLSX_PART_TOO_BIG,
    ERR_XLSX_PART_TOO_COMPLEX,
    ERR_XLSX_ROW_TOO_BIG,
    ERR_XLSX_TOO_BIG,
    ERR_XLSX_TOO_MANY_ROWS,
    XLSX_MAX_COMPRESSION_RATIO,
    XLSX_MAX_ENTRY_BYTES,
    XLSX_MAX_ENTRY_ELEMENTS,
    XLSX_MAX_SHARED_STRINGS,
    XLSX_MAX_UNCOMPRESSED_BYTES,
    XLSX_RATIO_CHECKED_FROM_BYTES,
    FileReadError,
    FileSource,
)

MB = 1024 * 1024
# What may follow a tag's name.
_NAME_ENDS = b" \t\r\n/>"
# A row's start or end tag with a namespace prefix ("<x:row"), and its attributes (whose
# values may hold ">"): slower to look for than "<row", so only in a block that has one.
_ATTRIBUTES = rb"(?:[^>\"']|\"[^\"]*\"|'[^']*')*"
_ROW_TAG_PREFIXED = re.compile(rb"<(/?)(?:[A-Za-z_][\w.-]*:)?row(?=[\s/>])" + _ATTRIBUTES + rb">")
_PREFIXED = re.compile(rb":row[\s/>]")
# The end of a block after its last "<" (a tag perhaps cut in two) waits for the next block
# when it is this short; a longer one is text, counted where it is.
_CARRY_MAX = 4096
# Where an XML declaration may start: at the beginning, after a byte order mark.
_DECLARATION_BY = 3
# A part read whole (styles, the workbook...) is read this much at a time.
_READ_BYTES = MB


@dataclass(frozen=True, slots=True)
class WorkbookLimits:
    """The bounds a workbook is read within (see the settings and ``formats.base``)."""

    cell_bytes: int
    rows: int
    texts: int = XLSX_MAX_SHARED_STRINGS
    entry_bytes: int = XLSX_MAX_ENTRY_BYTES
    entry_elements: int = XLSX_MAX_ENTRY_ELEMENTS


def workbook_limits() -> WorkbookLimits:
    return WorkbookLimits(
        cell_bytes=settings.MIGRATION_XLSX_MAX_CELL_BYTES, rows=settings.MIGRATION_XLSX_MAX_ROWS
    )


def grouped(value: int) -> str:
    return number_format(value, force_grouping=True)


def check_xlsx_archive(data: bytes | FileSource) -> None:
    """Refuse a file that is no workbook, or one that would inflate beyond the limits,
    from the archive's directory alone (nothing is inflated): each member by its size and
    its own ratio (an incompressible member cannot hide a bomb in another), then all."""
    source = data if isinstance(data, FileSource) else FileSource(data)
    with source.open() as handle:
        try:
            archive = zipfile.ZipFile(handle)
        except zipfile.BadZipFile as exc:
            raise FileReadError(ERR_XLSX_NOT_ZIP) from exc
        with archive:
            members = archive.infolist()
    if not any(m.filename == "[Content_Types].xml" for m in members):
        raise FileReadError(ERR_XLSX_NOT_WORKBOOK)
    for member in members:
        size = {"part": member.filename, "size": member.file_size // MB}
        if member.file_size > XLSX_MAX_UNCOMPRESSED_BYTES:
            raise FileReadError(Message.of(ERR_XLSX_PART_TOO_BIG, **size))
        ratio = member.file_size / (member.compress_size or 1)
        if member.file_size > XLSX_RATIO_CHECKED_FROM_BYTES and ratio > XLSX_MAX_COMPRESSION_RATIO:
            raise FileReadError(Message.of(ERR_XLSX_PART_RATIO, **size, ratio=grouped(int(ratio))))
    total = sum(m.file_size for m in members)
    compressed = sum(m.compress_size for m in members) or 1
    if total > XLSX_MAX_UNCOMPRESSED_BYTES or total / compressed > XLSX_MAX_COMPRESSION_RATIO:
        raise FileReadError(Message.of(ERR_XLSX_TOO_BIG, size=total // MB))


class PartScan:
    """The bytes of one part of a workbook, judged block by block as they are inflated
    (``feed``, then ``finish``); a part past a bound raises ``FileReadError``. With
    ``counts_rows`` (every part but the shared strings, which their reader bounds), rows
    are counted and the bytes and elements of each row, and of the rest, bounded."""

    def __init__(self, *, part: str, limits: WorkbookLimits, counts_rows: bool = True) -> None:
        self.part = part
        self.limits = limits
        self.counts_rows = counts_rows
        self.rows = 0
        self.seen = 0
        # Bytes since the last "<", so far: a text or a tag that is not over yet.
        self._run = 0
        self._ends_with_lt = False
        self._carry = b""
        # In a row: its bytes and elements so far; the rest of the part's.
        self._inside = False
        self._entry = [0, 0]
        self._rest = [0, 0]

    def feed(self, block: bytes) -> None:
        if not block:
            return
        self._check_runs(block)
        self._check_markup(block)
        self.seen += len(block)
        if not self.counts_rows:
            return
        data = self._carry + block if self._carry else block
        end = len(data)
        last = data.rfind(b"<")
        if last >= 0 and end - last < _CARRY_MAX:
            end = last
        self._carry = data[end:]
        self._tally(data, end)

    def finish(self) -> None:
        data, self._carry = self._carry, b""
        if self.counts_rows:
            self._tally(data, len(data))

    def _refuse(self, message, **params) -> FileReadError:
        return FileReadError(Message.of(message, part=self.part, **params))

    def _check_runs(self, block: bytes) -> None:
        """No run of bytes without "<" longer than a cell may be, across blocks too: every
        run longer than ``cap`` covers a whole window of ``step`` bytes, so only windows
        without "<" are measured exactly."""
        cap = self.limits.cell_bytes
        first = block.find(b"<")
        if first < 0:
            self._run += len(block)
            if self._run > cap:
                raise self._refuse(ERR_XLSX_CELL_TOO_LONG, max=FileSize(cap))
            return
        if self._run + first > cap:
            raise self._refuse(ERR_XLSX_CELL_TOO_LONG, max=FileSize(cap))
        last = block.rfind(b"<")
        step = max(1, (cap + 1) // 2)
        for start in range(first + 1, last - step + 1, step):
            if block.find(b"<", start, start + step) < 0:
                left = block.rfind(b"<", 0, start)
                right = block.find(b"<", start + step)
                if right - left - 1 > cap:
                    raise self._refuse(ERR_XLSX_CELL_TOO_LONG, max=FileSize(cap))
        self._run = len(block) - last - 1

    def _check_markup(self, block: bytes) -> None:
        """Only elements and texts: no comment, CDATA, DOCTYPE or processing instruction
        (but the XML declaration)."""
        marks = [(self.seen - 1, block[:8])] if self._ends_with_lt else []
        for mark in (b"<!", b"<?"):
            at = block.find(mark)
            while at >= 0:
                marks.append((self.seen + at, block[at + 1 : at + 9]))
                at = block.find(mark, at + 2)
        for position, following in marks:
            if following.startswith(b"?") and position <= _DECLARATION_BY:
                continue
            if following[:1] in (b"!", b"?"):
                is_doctype = following[1:].upper().startswith(b"DOCTYPE")
                raise self._refuse(ERR_XLSX_ENTITIES if is_doctype else ERR_XLSX_MARKUP)
        self._ends_with_lt = block.endswith(b"<")

    def _tally(self, data: bytes, end: int) -> None:
        """Count the rows in ``data[:end]`` (complete tags only), and add its bytes and
        elements to the row they belong to, or to the rest. A row is counted with what
        follows its start tag; a start tag inside a row that is still open adds to it
        (openpyxl holds both until it ends). A row that starts and ends in a block smaller
        than the bounds needs no counting: only the rest does, and rows cut by a block."""
        marks = []
        if _PREFIXED.search(data, 0, end):
            for tag in _ROW_TAG_PREFIXED.finditer(data, 0, end):
                if not tag.group(1):
                    marks.append((tag.start(), True))
                if tag.group(1) or data[tag.end() - 2] == 0x2F:  # "</row>" or "<row/>"
                    marks.append((tag.end(), False))
        else:
            marks = self._row_marks(data, end)
        marks.sort()  # where a row ends and the next starts, the end first
        limits = self.limits
        is_small = end <= limits.entry_bytes and data.count(b"<", 0, end) <= limits.entry_elements
        is_fresh = False  # the open row started in this block
        position = 0
        for at, is_start in marks:
            if not is_start:
                if not (is_fresh and is_small):
                    self._add(data, position, at)
                self._inside = is_fresh = False
                position = at
            else:
                self.rows += 1
                if self.rows > limits.rows:
                    raise self._refuse(ERR_XLSX_TOO_MANY_ROWS, max=grouped(limits.rows))
                if not self._inside:
                    self._add(data, position, at)
                    self._entry = [0, 0]
                    self._inside = is_fresh = True
                    position = at
        self._add(data, position, end)

    @staticmethod
    def _row_marks(data: bytes, end: int) -> list[tuple[int, bool]]:
        """Where rows start (``True``) and end in ``data[:end]``, found with ``find`` (the
        quickest search there is); a ">" in a value of a row's attribute only errs strict."""
        find = data.find
        marks = []
        at = find(b"<row", 0, end)
        while at >= 0:
            after = at + 4
            if after < end and data[after] in _NAME_ENDS:
                marks.append((at, True))
                closed = find(b">", after, end)
                if closed > 0 and data[closed - 1] == 0x2F:  # "<row/>"
                    marks.append((closed + 1, False))
            at = find(b"<row", after, end)
        at = find(b"</row", 0, end)
        while at >= 0:
            after = at + 5
            if after < end and data[after] in _NAME_ENDS:
                marks.append((after + 1, False))  # at "</row>"'s end (or just before)
            at = find(b"</row", after, end)
        return marks

    def _add(self, data: bytes, start: int, end: int) -> None:
        if end <= start:
            return
        elements = data.count(b"<", start, end) - data.count(b"</", start, end)
        tally = self._entry if self._inside else self._rest
        tally[0] += end - start
        tally[1] += elements
        if tally[0] > self.limits.entry_bytes or tally[1] > self.limits.entry_elements:
            message = ERR_XLSX_ROW_TOO_BIG if self._inside else ERR_XLSX_PART_TOO_COMPLEX
            raise self._refuse(
                message,
                elements=grouped(self.limits.entry_elements),
                size=FileSize(self.limits.entry_bytes),
            )


class GuardedStream(io.RawIOBase):
    """A part of the archive as openpyxl reads it, every block scanned first."""

    def __init__(self, raw, *, scan: PartScan) -> None:
        super().__init__()
        self._raw = raw
        self._scan = scan
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        data = self._raw.read(size)
        if data:
            self._scan.feed(data)
        elif size and not self._done:  # the end of the part
            self._done = True
            self._scan.finish()
        return data

    def readall(self) -> bytes:
        blocks = []
        while block := self.read(_READ_BYTES):
            blocks.append(block)
        return b"".join(blocks)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def tell(self) -> int:
        """How much of the part was read."""
        return self._scan.seen

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class GuardedZipFile(zipfile.ZipFile):
    """The workbook's archive, each part read through a ``GuardedStream``."""

    def __init__(self, file, *, limits: WorkbookLimits) -> None:
        super().__init__(file)
        self.limits = limits

    def open(self, name, mode="r", pwd=None, *, force_zip64=False, counts_rows=True):
        raw = super().open(name, mode, pwd, force_zip64=force_zip64)
        if mode != "r":
            return raw
        part = name.filename if isinstance(name, zipfile.ZipInfo) else str(name)
        scan = PartScan(part=part, limits=self.limits, counts_rows=counts_rows)
        return GuardedStream(raw, scan=scan)
