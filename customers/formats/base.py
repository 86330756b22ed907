"""What every format shares: the limits and messages, the error, the table of rows and the
nested document a format reads a file into, and the import-export format they build on."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from import_export.formats.base_formats import Format

from console.messages import Message, as_message

XLSX_MAX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024
XLSX_MAX_COMPRESSION_RATIO = 200
# A part of a workbook this big or smaller is never judged by its ratio: it cannot be a bomb.
XLSX_RATIO_CHECKED_FROM_BYTES = 1024 * 1024
# What one row of a sheet (or one text of the shared strings) may hold, and what a part may
# hold outside its rows (its header, merged cells, styles...). A row of Excel's 16,384
# cells is about 50,000 elements; the bounds keep a part's parse under ~60 MB.
XLSX_MAX_ENTRY_BYTES = 16 * 1024 * 1024
XLSX_MAX_ENTRY_ELEMENTS = 250_000
# The shared strings (every distinct text of a workbook): how many, and how many bytes of
# them are kept in memory (the rest wait in a temporary file).
XLSX_MAX_SHARED_STRINGS = 10_000_000
XLSX_SHARED_STRINGS_MEMORY_BYTES = 64 * 1024 * 1024
CSV_DELIMITERS = (",", ";", "\t", "|")
# Text is decoded this much at a time when its encoding is checked.
DECODE_CHUNK_BYTES = 1 << 20
# A file object given by the caller is read through a buffer of this size.
READ_BUFFER_BYTES = 1 << 16
csv.field_size_limit(16 * 1024 * 1024)

# A file with more columns is refused before any row is read: no export of one of the
# kinds needs more, and every column costs memory in each row and each message.
MAX_COLUMNS = 500

ERR_EMPTY = _("The file is empty.")
MORE_COLUMNS = ngettext_lazy("and %(count)s more", "and %(count)s more", "count")
ERR_TOO_MANY_COLUMNS = _(
    "The file has %(count)s columns; at most %(max)s can be read. Export only the columns "
    "the console needs, then import it again."
)
ERR_NUL_BYTES = _(
    "The file contains NUL bytes, so it is not a text file. Export it again as CSV (UTF-8) "
    "or choose the format that matches it."
)
ERR_UTF16 = _(
    "The file starts like UTF-16 text but cannot be read as such; export it again as CSV (UTF-8)."
)
ERR_HEADER_UNREADABLE = _("The header row cannot be read: %(error)s.")
ERR_ROW_UNREADABLE = _("cannot be read: %(error)s (a quote may be left open)")
ERR_XLSX_NOT_ZIP = _("The file is not an XLSX workbook (it is not a valid zip archive).")
ERR_XLSX_NOT_WORKBOOK = _("The file is a zip archive but not an XLSX workbook.")
ERR_XLSX_TOO_BIG = _(
    "The workbook expands to %(size)s MB when opened, which is too big to be safe."
)
ERR_XLSX_UNREADABLE = _("The workbook cannot be opened: %(error)s.")
ERR_XLSX_NO_SHEET = _("The workbook has no worksheet.")
ERR_XLSX_SHEET_UNREADABLE = _("the sheet cannot be read from here on: %(error)s")
ERR_XLSX_ENTITIES = _(
    "The workbook declares XML entities (a DOCTYPE), which Excel never writes and which are "
    "refused for safety. Save it again from Excel or export it as CSV."
)
ERR_XLSX_MARKUP = _(
    "The workbook's part “%(part)s” holds XML comments, CDATA sections or processing "
    "instructions, which Excel never writes and which are refused for safety. Save it "
    "again from Excel or export it as CSV."
)
ERR_XLSX_PART_TOO_BIG = _(
    "The workbook's part “%(part)s” expands to %(size)s MB when opened, which is too big to "
    "be safe."
)
ERR_XLSX_PART_RATIO = _(
    "The workbook's part “%(part)s” expands %(ratio)s times when opened (to %(size)s MB), "
    "which is too big to be safe: no spreadsheet compresses that well."
)
ERR_XLSX_CELL_TOO_LONG = _(
    "The workbook's part “%(part)s” holds a text longer than %(max)s, the most a cell may hold "
    "here; the file is refused for safety."
)
ERR_XLSX_TOO_MANY_ROWS = _(
    "The workbook's sheet “%(part)s” has more than %(max)s rows, the most a sheet may have "
    "here. Split the file, or export it as CSV."
)
ERR_XLSX_ROW_TOO_BIG = _(
    "A row of the workbook's part “%(part)s” holds more than %(elements)s XML elements or "
    "%(size)s; no spreadsheet writes such a row, so the file is refused for safety."
)
ERR_XLSX_TEXT_TOO_BIG = _(
    "A text of the workbook's part “%(part)s” holds more than %(elements)s XML elements or "
    "%(size)s; no spreadsheet writes such a text, so the file is refused for safety."
)
ERR_XLSX_PART_TOO_COMPLEX = _(
    "The workbook's part “%(part)s” holds more than %(elements)s XML elements or %(size)s "
    "outside its rows; no spreadsheet writes that, so the file is refused for safety."
)
ERR_XLSX_TOO_MANY_TEXTS = _(
    "The workbook holds more than %(max)s different texts, the most a workbook may hold "
    "here. Split the file, or export it as CSV."
)
ERR_JSON_INVALID = _("The file is not valid JSON: %(error)s at line %(line)s, column %(col)s.")
ERR_JSON_UNREADABLE = _("The file cannot be read as JSON: %(error)s.")
ERR_JSON_TOO_DEEP = _("The file cannot be read as JSON: it is nested too deeply.")
ERR_JSON_SHAPE = _(
    'A JSON object must be shaped like the request body: {"customers": [...]} and nothing else.'
)
ERR_JSON_NOT_LIST = _("A JSON file must hold a list of rows, one object per row.")
ERR_JSON_ROW_NOT_OBJECT = _("Every row of a JSON file must be an object.")


# Column names in a message: the first ones, each cut to a readable length, and a count.
COLUMNS_LISTED = 100
COLUMN_NAME_SHOWN = 80


def column_shown(name: str) -> str:
    """A column's name as a message quotes it: cut when long."""
    text = str(name)
    return text if len(text) <= COLUMN_NAME_SHOWN else text[: COLUMN_NAME_SHOWN - 1] + "…"


def columns_listed(names: list[str]) -> str:
    """Column names for a message: quoted, each cut to a readable length, the first
    ``COLUMNS_LISTED`` and a count of the rest."""
    listed = ", ".join(f"“{column_shown(name)}”" for name in names[:COLUMNS_LISTED])
    hidden = len(names) - COLUMNS_LISTED
    return listed if hidden <= 0 else f"{listed} {MORE_COLUMNS % {'count': hidden}}"


# The column an error file adds (customers.errorfile): ignored when the fixed file comes back.
ANNOTATION_COLUMN = "errors"


class FileReadError(ValueError):
    """The file cannot be read as the chosen format; the message says why, and ``row``
    names the row where reading stopped, when it stopped at one.

    Given a ``Message`` or a message constant, the message is also kept untranslated
    (``untranslated``), for a background upload's later readers; other words are kept as
    they are."""

    def __init__(self, message: Message | Promise | str, *, row: int | None = None) -> None:
        self.untranslated = as_message(message)
        super().__init__(str(self.untranslated))
        self.row = row


def header_key(value) -> str:
    """A header as it is compared: a BOM removed, trimmed (every Unicode space), in NFC and
    case-folded; accents count (``Código`` is ``código``, not ``codigo``)."""
    text = str(value if value is not None else "").replace("\ufeff", "").strip()
    return unicodedata.normalize("NFC", text).casefold()


def header_text(value) -> str:
    """A header as the file writes it, for messages (BOM and surrounding spaces removed)."""
    return str(value if value is not None else "").replace("\ufeff", "").strip()


@dataclass(frozen=True, slots=True)
class CellError:
    """A cell that a mapping could not turn into a value: the resource reports
    ``message`` against the file's ``column`` instead of parsing the cell."""

    column: str
    message: str


@dataclass
class SourceTable:
    """The rows of a flat file: normalised headers and lazily produced rows.

    ``rows()`` yields ``(row_number, values)`` where ``row_number`` is the row as a
    spreadsheet shows it (the header is row 1) and ``values`` has one entry per header.
    """

    headers: list[str]
    _rows: object = field(repr=False)
    encoding: str = ""
    first_row_number: int = 2
    # The headers as the file writes them (``headers`` are their ``header_key``).
    raw_headers: list[str] = field(default_factory=list)
    # The file's own name of a column, for messages, by header (set by a mapping).
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.headers) > MAX_COLUMNS:
            raise FileReadError(
                Message.of(ERR_TOO_MANY_COLUMNS, count=f"{len(self.headers):,}", max=MAX_COLUMNS)
            )

    def label(self, header: str) -> str:
        return self.labels.get(header, header)

    def rows(self) -> Iterator[tuple[int, list]]:
        return self._rows()

    def __bool__(self) -> bool:
        return bool(self.headers)


@dataclass
class NestedDocument:
    """A JSON file shaped like the endpoint's body: ``{"customers": [...]}``."""

    customers: list
    encoding: str = "utf-8"

    def __bool__(self) -> bool:
        return True


class _Unclosed(io.RawIOBase):
    """A caller's binary file object read from its own position, never closed: every
    stream over it starts at 0, and closing one leaves the caller's file open."""

    def __init__(self, file) -> None:
        super().__init__()
        self._file = file
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._file.seek(self._position)
        data = self._file.read(len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            self._file.seek(0, io.SEEK_END)
            offset += self._file.tell()
        elif whence == io.SEEK_CUR:
            offset += self._position
        self._position = offset
        return offset

    def tell(self) -> int:
        return self._position


class FileSource:
    """A file as a format reads it, however it was given: the bytes of a small upload, a
    path on disk (``os.PathLike``), or a seekable binary file object (an upload the
    storage keeps; it is left open). ``open()`` gives a binary stream from the start each
    time, so a table's rows can be read again, and nothing of the file is held in memory
    but what is being read (bytes, of course, are already there)."""

    def __init__(self, content: bytes | os.PathLike | BinaryIO | FileSource) -> None:
        if isinstance(content, FileSource):
            content = content.content
        if not isinstance(content, bytes | bytearray | memoryview | os.PathLike) and not (
            hasattr(content, "read") and hasattr(content, "seek")
        ):
            raise TypeError(f"not bytes, a path or a binary file: {type(content).__name__}")
        self.content = content

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        content = self.content
        if isinstance(content, bytes | bytearray | memoryview):
            yield io.BytesIO(content)
        elif isinstance(content, os.PathLike):
            with open(content, "rb") as handle:
                yield handle
        else:
            with io.BufferedReader(_Unclosed(content), READ_BUFFER_BYTES) as handle:
                yield handle

    def chunks(self, size: int = DECODE_CHUNK_BYTES) -> Iterator[bytes]:
        """The file's bytes, ``size`` at a time."""
        with self.open() as handle:
            while chunk := handle.read(size):
                yield chunk

    def head(self, size: int) -> bytes:
        with self.open() as handle:
            return handle.read(size)


class StagingFormat(Format):
    """A format read from the upload as it was given (``FileSource``: bytes, a path or a
    binary file object; the encoding is found here)."""

    title = ""
    extension = ""
    content_type = "application/octet-stream"

    def __init__(self, encoding: str | None = None):
        self.encoding = encoding

    def get_title(self) -> str:
        return self.title

    def get_extension(self) -> str:
        return self.extension

    def get_content_type(self) -> str:
        return self.content_type

    def is_binary(self) -> bool:
        return True

    def get_read_mode(self) -> str:
        return "rb"

    def can_import(self) -> bool:
        return True
