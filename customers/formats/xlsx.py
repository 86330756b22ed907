"""Excel workbooks: the archive checked before anything is inflated, the first sheet read
read-only and lazily, XML entities refused."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator

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
    SourceTable,
    StagingFormat,
    header_key,
    header_text,
)

# A number format made of zeros only ("000000") shows 123 as 000123: a legacy id.
_ZERO_PADDED_FORMAT = re.compile(r"^0+$")


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


class XLSX(StagingFormat):
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
        raw_headers = [header_text(h) for h in header_row]
        while raw_headers and not raw_headers[-1]:
            raw_headers.pop()
        return SourceTable(
            headers=[header_key(h) for h in raw_headers],
            _rows=lambda: _sheet_rows(book, sheet, width=len(raw_headers)),
            encoding="XLSX",
            raw_headers=raw_headers,
        )
