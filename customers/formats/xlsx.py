"""Excel workbooks: the archive checked before anything is inflated, the first sheet read
read-only and lazily from the file, XML entities refused."""

from __future__ import annotations

import contextlib
import os
import re
import zipfile
from collections.abc import Iterator
from typing import BinaryIO

from customers.formats.base import (
    ERR_EMPTY,
    ERR_XLSX_ENTITIES,
    ERR_XLSX_NO_SHEET,
    ERR_XLSX_NOT_WORKBOOK,
    ERR_XLSX_NOT_ZIP,
    ERR_XLSX_SHEET_UNREADABLE,
    ERR_XLSX_TOO_BIG,
    ERR_XLSX_UNREADABLE,
    XLSX_MAX_COMPRESSION_RATIO,
    XLSX_MAX_UNCOMPRESSED_BYTES,
    FileReadError,
    FileSource,
    SourceTable,
    StagingFormat,
    header_key,
    header_text,
)

# A number format made of zeros only ("000000") shows 123 as 000123: a legacy id.
_ZERO_PADDED_FORMAT = re.compile(r"^0+$")


def check_xlsx_archive(data: bytes | FileSource) -> None:
    """Refuse a file that is no workbook, or one that would inflate beyond the limits,
    from the archive's directory alone (nothing is inflated)."""
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


@contextlib.contextmanager
def _workbook(source: FileSource) -> Iterator:
    """The workbook opened read-only from the file (formulas give their values), closed
    with the file when done; openpyxl reads the sheet from the file as it is asked for."""
    import openpyxl  # openpyxl parses with defusedxml when it is installed

    with source.open() as handle:
        try:
            book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except Exception as exc:
            raise _xml_problem(exc, message=ERR_XLSX_UNREADABLE) from exc
        try:
            yield book
        finally:
            book.close()


def _header(book) -> list[str]:
    """The first sheet's header row as the file writes it, trailing blanks left out."""
    if not book.worksheets:
        raise FileReadError(ERR_XLSX_NO_SHEET)
    try:
        header_row = next(book.worksheets[0].iter_rows(max_row=1, values_only=True), None)
    except Exception as exc:
        raise _xml_problem(exc, message=ERR_XLSX_UNREADABLE) from exc
    if not header_row:
        raise FileReadError(ERR_EMPTY)
    raw_headers = [header_text(h) for h in header_row]
    while raw_headers and not raw_headers[-1]:
        raw_headers.pop()
    return raw_headers


def _sheet_rows(book, *, width: int) -> Iterator[tuple[int, list]]:
    """The first sheet's rows after the header, by row number, read lazily (blank rows
    left out, short rows padded to ``width``)."""
    row_number = 1
    sheet = book.worksheets[0]
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


class XLSX(StagingFormat):
    """The first sheet of an Excel workbook, opened read-only (formulas give their values).

    Read from the file each time its rows are asked for. openpyxl holds the workbook's
    table of shared strings in memory (Excel writes every text cell there), so a workbook
    costs memory in proportion to its distinct texts; CSV and TSV cost none."""

    title = "xlsx"
    extension = "xlsx"
    content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    def create_dataset(self, in_stream: bytes | FileSource | os.PathLike | BinaryIO):
        source = FileSource(in_stream)
        check_xlsx_archive(source)
        opened = contextlib.ExitStack()
        book = opened.enter_context(_workbook(source))
        with contextlib.ExitStack() as on_error:
            on_error.callback(opened.close)
            raw_headers = _header(book)
            on_error.pop_all()
        # The workbook opened for the header serves the first reading of the rows (its
        # shared strings are read once); a later reading opens the file again.
        kept = [(book, opened)]

        def rows() -> Iterator[tuple[int, list]]:
            book, opened = kept.pop() if kept else _opened(source)
            with opened:
                yield from _sheet_rows(book, width=len(raw_headers))

        return SourceTable(
            headers=[header_key(h) for h in raw_headers],
            _rows=rows,
            encoding="XLSX",
            raw_headers=raw_headers,
        )


def _opened(source: FileSource) -> tuple[object, contextlib.ExitStack]:
    opened = contextlib.ExitStack()
    return opened.enter_context(_workbook(source)), opened
