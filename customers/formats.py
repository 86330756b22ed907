"""Reading legacy export files: CSV, TSV, XLSX and JSON.

These are django-import-export formats, so the admin's import form offers them, but they
read files the way a legacy export needs: the text encoding is detected (UTF-8, with or
without BOM, else Windows-1252), the delimiter of a CSV is recognised, XLSX files are
opened read-only behind size limits, and rows are produced lazily so a file of hundreds
of thousands of rows is never held as Python objects all at once.

A format's ``create_dataset`` returns a :class:`SourceTable` (flat files) or a
:class:`NestedDocument` (a JSON file shaped like the endpoint's body). Problems with the
file itself raise :class:`FileReadError` with a message an operator can act on.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _
from import_export.formats.base_formats import Format

# An XLSX is a zip of XML parts; refuse archives that would expand beyond this.
XLSX_MAX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024
XLSX_MAX_COMPRESSION_RATIO = 200
CSV_DELIMITERS = (",", ";", "\t", "|")
# Text is decoded this much at a time when its encoding is checked.
DECODE_CHUNK_BYTES = 1 << 20
csv.field_size_limit(16 * 1024 * 1024)
# A number format made of zeros only ("000000") shows 123 as 000123: a legacy id.
_ZERO_PADDED_FORMAT = re.compile(r"^0+$")

ERR_EMPTY = _("The file is empty.")
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
ERR_JSON_INVALID = _("The file is not valid JSON: %(error)s at line %(line)s, column %(col)s.")
ERR_JSON_UNREADABLE = _("The file cannot be read as JSON: %(error)s.")
ERR_JSON_TOO_DEEP = _("The file cannot be read as JSON: it is nested too deeply.")
ERR_JSON_SHAPE = _(
    'A JSON object must be shaped like the request body: {"customers": [...]} and nothing else.'
)
ERR_JSON_NOT_LIST = _("A JSON file must hold a list of rows, one object per row.")
ERR_JSON_ROW_NOT_OBJECT = _("Every row of a JSON file must be an object.")


class FileReadError(ValueError):
    """The file cannot be read as the chosen format; the message says why, and ``row``
    names the row where reading stopped, when it stopped at one."""

    def __init__(self, message, *, row: int | None = None) -> None:
        super().__init__(str(message))
        self.row = row


def header_key(value) -> str:
    """A header as it is compared: a BOM removed, trimmed (every Unicode space), in NFC and
    case-folded; accents count (``Código`` is ``código``, not ``codigo``)."""
    text = str(value if value is not None else "").replace("\ufeff", "").strip()
    return unicodedata.normalize("NFC", text).casefold()


def _header_text(value) -> str:
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

    def label(self, header: str) -> str:
        return self.labels.get(header, header)

    def rows(self) -> Iterator[tuple[int, list]]:
        yield from self._rows()

    def __bool__(self) -> bool:
        return bool(self.headers)


@dataclass
class NestedDocument:
    """A JSON file shaped like the endpoint's body: ``{"customers": [...]}``."""

    customers: list
    encoding: str = "utf-8"

    def __bool__(self) -> bool:
        return True


def _decoded_chunks(data: bytes, codec: str) -> Iterator[str]:
    """``data`` decoded a slice at a time; raises UnicodeDecodeError where it fails."""
    decoder = codecs.getincrementaldecoder(codec)()
    view = memoryview(data)
    for start in range(0, len(data), DECODE_CHUNK_BYTES):
        end = start + DECODE_CHUNK_BYTES
        yield decoder.decode(view[start:end], final=end >= len(data))
    if not data:
        yield decoder.decode(b"", final=True)


def _decodes(data: bytes, codec: str) -> bool:
    try:
        for _text in _decoded_chunks(data, codec):
            pass
    except UnicodeDecodeError:
        return False
    return True


def text_encoding(data: bytes) -> tuple[str, str]:
    """The codec of a text export and its name for people: UTF-16 with its BOM (Excel's
    "Unicode text"), UTF-8 (BOM or not), else Windows-1252, else Latin-1.

    The file is decoded a slice at a time and nothing decoded is kept, so checking a big
    file costs no more memory than the file itself."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            if any("\x00" in text for text in _decoded_chunks(data, "utf-16")):
                raise FileReadError(ERR_NUL_BYTES)
        except UnicodeDecodeError as exc:
            raise FileReadError(ERR_UTF16) from exc
        return "utf-16", "UTF-16"
    if b"\x00" in data:
        raise FileReadError(ERR_NUL_BYTES)
    for codec, label in (("utf-8-sig", "UTF-8"), ("cp1252", "Windows-1252")):
        if _decodes(data, codec):
            return codec, label
    return "latin-1", "Latin-1"


def decode_text(data: bytes) -> tuple[str, str]:
    """The whole text of an export, decoded as ``text_encoding`` finds, and its encoding."""
    codec, label = text_encoding(data)
    return data.decode(codec), label


def _guess_delimiter(first_line: str, default: str) -> str:
    counts = {d: first_line.count(d) for d in CSV_DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] > counts.get(default, 0) else default


class _StagingFormat(Format):
    """A format read from the raw bytes of the upload (the encoding is found here)."""

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


class _TextTableFormat(_StagingFormat):
    """A delimited text file read with the ``csv`` module."""

    content_type = "text/csv"
    delimiter = ","

    def create_dataset(self, in_stream: bytes | str) -> SourceTable:
        if isinstance(in_stream, str):
            data, codec, encoding = in_stream.lstrip("\ufeff").encode(), "utf-8", "UTF-8"
        else:
            data = in_stream
            codec, encoding = text_encoding(data)

        def text() -> io.TextIOWrapper:
            # Decoded as it is read: a big file is never held as one string.
            return io.TextIOWrapper(io.BytesIO(data), encoding=codec, newline="")

        first_line = next((line for line in text() if line.strip()), "")
        if not first_line:
            raise FileReadError(ERR_EMPTY)
        delimiter = _guess_delimiter(first_line, self.delimiter)
        header_reader = csv.reader(text(), delimiter=delimiter, strict=True)
        try:
            raw_headers = [_header_text(h) for h in next(header_reader)]
        except (csv.Error, StopIteration) as exc:
            raise FileReadError(ERR_HEADER_UNREADABLE % {"error": exc}) from exc

        def rows() -> Iterator[tuple[int, list]]:
            reader = csv.reader(text(), delimiter=delimiter, strict=True)
            # The last row read: the header, then each data row in turn.
            row_number = 1
            try:
                next(reader)
                for row_number, values in enumerate(reader, start=2):  # noqa: B007
                    if not values or not any(v.strip() for v in values):
                        continue
                    yield row_number, values
            except csv.Error as exc:
                raise FileReadError(
                    ERR_ROW_UNREADABLE % {"error": exc}, row=row_number + 1
                ) from exc

        return SourceTable(
            headers=[header_key(h) for h in raw_headers],
            _rows=rows,
            encoding=encoding,
            raw_headers=raw_headers,
        )


class CSV(_TextTableFormat):
    title = "csv"
    extension = "csv"


class TSV(_TextTableFormat):
    title = "tsv"
    extension = "tsv"
    content_type = "text/tab-separated-values"
    delimiter = "\t"


def check_xlsx_archive(data: bytes) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise FileReadError(ERR_XLSX_NOT_ZIP) from exc
    with archive:
        members = archive.infolist()
        if not any(m.filename == "[Content_Types].xml" for m in members):
            raise FileReadError(ERR_XLSX_NOT_WORKBOOK)
        total = sum(m.file_size for m in members)
        compressed = sum(m.compress_size for m in members) or 1
        if total > XLSX_MAX_UNCOMPRESSED_BYTES or total / compressed > XLSX_MAX_COMPRESSION_RATIO:
            raise FileReadError(ERR_XLSX_TOO_BIG % {"size": total // (1024 * 1024)})


def _xml_problem(exc: BaseException, *, message) -> FileReadError:
    """An openpyxl failure as a FileReadError (``message`` names the exception's type); a
    DOCTYPE refused by defusedxml says so."""
    from defusedxml import DefusedXmlException

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DefusedXmlException):
            return FileReadError(ERR_XLSX_ENTITIES)
        seen = seen.__cause__ or seen.__context__
    return FileReadError(message % {"error": type(exc).__name__})


def _cell_value(cell):
    """A cell's value; a whole number shown zero-padded (format ``000000``) is the text the
    operator sees, so a legacy id ``000123`` keeps its zeros."""
    value = cell.value
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        number_format = cell.number_format or ""
        if _ZERO_PADDED_FORMAT.match(number_format) and float(value).is_integer():
            return str(int(value)).zfill(len(number_format))
    return value


def _sheet_rows(book, sheet, *, width: int) -> Iterator[tuple[int, list]]:
    """The sheet's rows after the header, by row number, read lazily (blank rows left
    out, short rows padded to ``width``); the book is closed once they are read."""
    row_number = 1
    try:
        for row_number, cells in enumerate(sheet.iter_rows(min_row=2), start=2):  # noqa: B007
            values = [_cell_value(cell) for cell in cells]
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                continue
            extra = values[width:]
            if any(v is not None and str(v).strip() for v in extra):
                yield row_number, values
            else:
                yield row_number, values[:width] + [None] * (width - len(values))
    except Exception as exc:
        problem = _xml_problem(exc, message=ERR_XLSX_SHEET_UNREADABLE)
        problem.row = row_number + 1
        raise problem from exc
    finally:
        book.close()


class XLSX(_StagingFormat):
    """The first sheet of an Excel workbook, opened read-only (formulas give their values)."""

    title = "xlsx"
    extension = "xlsx"
    content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    def create_dataset(self, in_stream: bytes) -> SourceTable:
        import openpyxl  # openpyxl parses with defusedxml when it is installed

        check_xlsx_archive(in_stream)
        try:
            book = openpyxl.load_workbook(io.BytesIO(in_stream), read_only=True, data_only=True)
        except Exception as exc:
            raise _xml_problem(exc, message=ERR_XLSX_UNREADABLE) from exc
        if not book.worksheets:
            book.close()
            raise FileReadError(ERR_XLSX_NO_SHEET)
        sheet = book.worksheets[0]
        try:
            header_row = next(sheet.iter_rows(max_row=1, values_only=True), None)
        except Exception as exc:
            book.close()
            raise _xml_problem(exc, message=ERR_XLSX_UNREADABLE) from exc
        if not header_row:
            book.close()
            raise FileReadError(ERR_EMPTY)
        raw_headers = [_header_text(h) for h in header_row]
        while raw_headers and not raw_headers[-1]:
            raw_headers.pop()
        return SourceTable(
            headers=[header_key(h) for h in raw_headers],
            _rows=lambda: _sheet_rows(book, sheet, width=len(raw_headers)),
            encoding="XLSX",
            raw_headers=raw_headers,
        )


class JSON(_StagingFormat):
    """A JSON file: a list of row objects, or a nested body ``{"customers": [...]}``."""

    title = "json"
    extension = "json"
    content_type = "application/json"

    def create_dataset(self, in_stream: bytes | str) -> SourceTable | NestedDocument:
        text, encoding = (
            (in_stream, "UTF-8") if isinstance(in_stream, str) else decode_text(in_stream)
        )
        if not text.strip():
            raise FileReadError(ERR_EMPTY)
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FileReadError(
                ERR_JSON_INVALID % {"error": exc.msg, "line": exc.lineno, "col": exc.colno}
            ) from exc
        except RecursionError as exc:
            raise FileReadError(ERR_JSON_TOO_DEEP) from exc
        except ValueError as exc:
            # e.g. an integer of more digits than Python converts
            raise FileReadError(ERR_JSON_UNREADABLE % {"error": exc}) from exc
        if isinstance(document, dict):
            customers = document.get("customers")
            if not isinstance(customers, list) or set(document) != {"customers"}:
                raise FileReadError(ERR_JSON_SHAPE)
            return NestedDocument(customers=customers, encoding=encoding)
        if not isinstance(document, list):
            raise FileReadError(ERR_JSON_NOT_LIST)
        headers: list[str] = []
        seen: set[str] = set()
        for item in document:
            if not isinstance(item, dict):
                raise FileReadError(ERR_JSON_ROW_NOT_OBJECT)
            for key in item:
                if key not in seen:
                    seen.add(key)
                    headers.append(key)

        def rows() -> Iterator[tuple[int, list]]:
            for number, item in enumerate(document, start=1):
                yield number, [item.get(h) for h in headers]

        return SourceTable(
            headers=[header_key(h) for h in headers],
            _rows=rows,
            encoding=encoding,
            first_row_number=1,
            raw_headers=[_header_text(h) for h in headers],
        )


STAGING_FORMATS = [CSV, TSV, XLSX, JSON]
