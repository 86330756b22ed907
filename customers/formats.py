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

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from import_export.formats.base_formats import Format

# An XLSX is a zip of XML parts; refuse archives that would expand beyond this.
XLSX_MAX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024
XLSX_MAX_COMPRESSION_RATIO = 200
CSV_DELIMITERS = (",", ";", "\t", "|")
csv.field_size_limit(16 * 1024 * 1024)


class FileReadError(ValueError):
    """The file cannot be read as the chosen format; the message says why."""


def _normalise_header(value) -> str:
    return str(value if value is not None else "").replace("\ufeff", "").strip().lower()


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


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode a text export: UTF-8 (BOM or not), else Windows-1252, else Latin-1."""
    if b"\x00" in data:
        raise FileReadError(
            _(
                "The file contains NUL bytes, so it is not a text file. Export it again "
                "as CSV (UTF-8) or choose the format that matches it."
            )
        )
    for encoding, label in (("utf-8-sig", "UTF-8"), ("cp1252", "Windows-1252")):
        try:
            return data.decode(encoding), label
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "Latin-1"


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
            text, encoding = in_stream.lstrip("\ufeff"), "UTF-8"
        else:
            text, encoding = decode_text(in_stream)
        if not text.strip():
            raise FileReadError(_("The file is empty."))
        first_line = text.split("\n", 1)[0]
        delimiter = _guess_delimiter(first_line, self.delimiter)
        header_reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        try:
            headers = [_normalise_header(h) for h in next(header_reader)]
        except (csv.Error, StopIteration) as exc:
            raise FileReadError(_("The header row cannot be read: %s.") % exc) from exc

        def rows() -> Iterator[tuple[int, list]]:
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
            row_number = 0
            try:
                next(reader)
                for row_number, values in enumerate(reader, start=2):  # noqa: B007
                    if not values or not any(v.strip() for v in values):
                        continue
                    yield row_number, values
            except csv.Error as exc:
                raise FileReadError(
                    _("Row %(row)s cannot be read: %(error)s (a quote may be left open).")
                    % {"row": row_number + 1, "error": exc}
                ) from exc

        return SourceTable(headers=headers, _rows=rows, encoding=encoding)


class CSV(_TextTableFormat):
    title = "csv"
    extension = "csv"


class TSV(_TextTableFormat):
    title = "tsv"
    extension = "tsv"
    content_type = "text/tab-separated-values"
    delimiter = "\t"


def _check_xlsx_archive(data: bytes) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise FileReadError(
            _("The file is not an XLSX workbook (it is not a valid zip archive).")
        ) from exc
    with archive:
        members = archive.infolist()
        if not any(m.filename == "[Content_Types].xml" for m in members):
            raise FileReadError(_("The file is a zip archive but not an XLSX workbook."))
        total = sum(m.file_size for m in members)
        compressed = sum(m.compress_size for m in members) or 1
        if total > XLSX_MAX_UNCOMPRESSED_BYTES or total / compressed > XLSX_MAX_COMPRESSION_RATIO:
            raise FileReadError(
                _("The workbook expands to %(size)s MB when opened, which is too big to be safe.")
                % {"size": total // (1024 * 1024)}
            )


class XLSX(_StagingFormat):
    """The first sheet of an Excel workbook, opened read-only (formulas give their values)."""

    title = "xlsx"
    extension = "xlsx"
    content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    def create_dataset(self, in_stream: bytes) -> SourceTable:
        import openpyxl  # openpyxl parses with defusedxml when it is installed

        _check_xlsx_archive(in_stream)
        try:
            book = openpyxl.load_workbook(io.BytesIO(in_stream), read_only=True, data_only=True)
        except Exception as exc:
            raise FileReadError(
                _("The workbook cannot be opened: %(error)s.") % {"error": type(exc).__name__}
            ) from exc
        sheet = book.worksheets[0]
        header_row = next(sheet.iter_rows(max_row=1, values_only=True), None)
        if not header_row:
            book.close()
            raise FileReadError(_("The file is empty."))
        headers = [_normalise_header(h) for h in header_row]
        while headers and not headers[-1]:
            headers.pop()
        width = len(headers)

        def rows() -> Iterator[tuple[int, list]]:
            try:
                for row_number, values in enumerate(
                    sheet.iter_rows(min_row=2, values_only=True), start=2
                ):
                    values = list(values)
                    if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                        continue
                    extra = values[width:]
                    if any(v is not None and str(v).strip() for v in extra):
                        yield row_number, values
                    else:
                        yield row_number, values[:width] + [None] * (width - len(values))
            finally:
                book.close()

        return SourceTable(headers=headers, _rows=rows, encoding="XLSX")


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
            raise FileReadError(_("The file is empty."))
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FileReadError(
                _("The file is not valid JSON: %(error)s at line %(line)s, column %(col)s.")
                % {"error": exc.msg, "line": exc.lineno, "col": exc.colno}
            ) from exc
        if isinstance(document, dict):
            customers = document.get("customers")
            if not isinstance(customers, list) or set(document) != {"customers"}:
                raise FileReadError(
                    _(
                        'A JSON object must be shaped like the request body: {"customers": '
                        "[...]} and nothing else."
                    )
                )
            return NestedDocument(customers=customers, encoding=encoding)
        if not isinstance(document, list):
            raise FileReadError(_("A JSON file must hold a list of rows, one object per row."))
        headers: list[str] = []
        seen: set[str] = set()
        for item in document:
            if not isinstance(item, dict):
                raise FileReadError(_("Every row of a JSON file must be an object."))
            for key in item:
                if key not in seen:
                    seen.add(key)
                    headers.append(key)
        normalised = [_normalise_header(h) for h in headers]

        def rows() -> Iterator[tuple[int, list]]:
            for number, item in enumerate(document, start=1):
                yield number, [item.get(h) for h in headers]

        return SourceTable(headers=normalised, _rows=rows, encoding=encoding, first_row_number=1)


STAGING_FORMATS = [CSV, TSV, XLSX, JSON]
