"""Excel workbooks: the archive checked before anything is inflated, every part read
through a guard that bounds what it may cost (``xlsx_guard``), the shared strings kept
compact (``xlsx_strings``), the first sheet read read-only and lazily from the file, XML
entities refused."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from itertools import repeat
from operator import is_
from typing import BinaryIO

from django.utils.formats import number_format
from openpyxl.cell.read_only import EMPTY_CELL
from openpyxl.reader.excel import ExcelReader
from openpyxl.xml.constants import SHARED_STRINGS

from console.messages import Message
from customers.formats.base import (
    ERR_EMPTY,
    ERR_XLSX_ENTITIES,
    ERR_XLSX_NO_SHEET,
    ERR_XLSX_SHEET_UNREADABLE,
    ERR_XLSX_TOO_MANY_ROWS,
    ERR_XLSX_UNREADABLE,
    FileReadError,
    FileSource,
    SourceTable,
    StagingFormat,
    header_key,
    header_text,
)
from customers.formats.xlsx_guard import (
    GuardedZipFile,
    WorkbookLimits,
    check_xlsx_archive,
    workbook_limits,
)
from customers.formats.xlsx_strings import shared_strings_read

# A number format made of zeros only ("000000") shows 123 as 000123: a legacy id.
_ZERO_PADDED_FORMAT = re.compile(r"^0+$")


__all__ = ["XLSX", "check_xlsx_archive", "workbook_opened"]


def _xml_problem(exc: BaseException, *, message) -> FileReadError:
    """An openpyxl failure as a FileReadError (``message`` names the exception's type); a
    DOCTYPE refused by defusedxml says so, and a part the guard refused says why."""
    from defusedxml import DefusedXmlException

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, FileReadError):
            return FileReadError(seen.untranslated, row=seen.row)
        if isinstance(seen, DefusedXmlException):
            return FileReadError(ERR_XLSX_ENTITIES)
        seen = seen.__cause__ or seen.__context__
    return FileReadError(Message.of(message, error=type(exc).__name__))


def _cell_value(cell):
    """A cell's value; a whole number shown zero-padded (format ``000000``) is the text the
    operator sees, so a legacy id ``000123`` keeps its zeros."""
    value = cell.value
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        number_format = cell.number_format or ""
        if _ZERO_PADDED_FORMAT.match(number_format) and float(value).is_integer():
            return str(int(value)).zfill(len(number_format))
    return value


class _Reader(ExcelReader):
    """openpyxl's reader of a workbook (read-only, formulas give their values), every part
    read through the guard, the shared strings kept compact."""

    def __init__(self, handle: BinaryIO, *, limits: WorkbookLimits) -> None:
        super().__init__(handle, read_only=True, data_only=True)
        self.archive.close()
        self.archive = GuardedZipFile(handle, limits=limits)
        self.limits = limits

    def read_strings(self) -> None:
        content_type = self.package.find(SHARED_STRINGS)
        if content_type is not None:
            part = content_type.PartName[1:]
            # Their reader bounds each text itself (it empties the tree after each).
            with self.archive.open(part, counts_rows=False) as source:
                self.shared_strings = shared_strings_read(source, part=part, limits=self.limits)

    def close(self) -> None:
        self.archive.close()
        close_strings = getattr(self.shared_strings, "close", None)
        if close_strings is not None:
            close_strings()


@contextlib.contextmanager
def workbook_opened(content: bytes | FileSource) -> Iterator:
    """The workbook opened read-only from the file, every part read through the guard,
    closed with the file when done; openpyxl reads the sheet from the file as it is asked
    for (with defusedxml). Only here is a workbook ever read."""
    source = content if isinstance(content, FileSource) else FileSource(content)
    check_xlsx_archive(source)
    limits = workbook_limits()
    with source.open() as handle:
        reader = None
        try:
            reader = _Reader(handle, limits=limits)
            reader.read()
        except Exception as exc:
            if reader is not None:
                reader.close()
            raise _xml_problem(exc, message=ERR_XLSX_UNREADABLE) from exc
        book = reader.wb
        # Rows are as wide as their cells, not as the sheet's declared dimension says.
        for sheet in book.worksheets:
            sheet.reset_dimensions()
        try:
            yield book
        finally:
            reader.close()


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


def _sheet_rows(book, *, width: int, max_rows: int) -> Iterator[tuple[int, list]]:
    """The first sheet's rows after the header, by row number, read lazily (blank rows
    left out, short rows padded to ``width``); a sheet past ``max_rows`` is refused."""
    row_number = 1
    sheet = book.worksheets[0]
    try:
        for row_number, cells in enumerate(sheet.iter_rows(min_row=2), start=2):  # noqa: B007
            if row_number > max_rows:
                raise FileReadError(
                    Message.of(
                        ERR_XLSX_TOO_MANY_ROWS,
                        part=sheet.title,
                        max=number_format(max_rows, force_grouping=True),
                    ),
                    row=row_number,
                )
            if len(cells) > width and all(map(is_, cells[width:], repeat(EMPTY_CELL))):
                cells = cells[:width]  # what openpyxl filled in up to a cell further right
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
        if problem.row is None:
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
        opened = contextlib.ExitStack()
        book = opened.enter_context(workbook_opened(source))
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
                yield from _sheet_rows(
                    book, width=len(raw_headers), max_rows=workbook_limits().rows
                )

        return SourceTable(
            headers=[header_key(h) for h in raw_headers],
            _rows=rows,
            encoding="XLSX",
            raw_headers=raw_headers,
        )


def _opened(source: FileSource) -> tuple[object, contextlib.ExitStack]:
    opened = contextlib.ExitStack()
    return opened.enter_context(workbook_opened(source)), opened
