"""An error file to fix offline: the uploaded file again, each row with its problems.

Rows and row numbers come from the staging formats, so they are the ones problems name; the
header is read again for its original text (and a CSV's delimiter: the one that reads it as
the format did); JSON keys stay as the format reads them rather than parse it twice. Blank
rows are left out; cells past the header follow ``errors``. Problems without a row are the
file's: the caller shows them (``file_level_problems``).

CSV: UTF-8 with a BOM, the source's delimiter, cells through ``spreadsheet_safe``, written
a row at a time into a spooled temporary file.

XLSX: a *write-only* workbook. A normal one keeps an object per cell (gigabytes for 100,000
rows of twenty columns); a write-only one streams rows to a temporary file, text inline (no
shared-strings table). ``WriteOnlyCell`` carries a bad cell's fill and comment; comments
wait in memory until the save (about 5 kB each), so only ``MAX_COMMENTS`` cells get one.
Text is stored as text (``data_type`` "s": ``=HYPERLINK(...)`` is never a formula); an
XLSX source keeps typed values (numbers, dates), others stay text (``000123``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Literal, Protocol

import openpyxl
from django.utils.translation import gettext_lazy as _
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill

from console.exports import spreadsheet_safe
from customers import formats

if TYPE_CHECKING:
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

ERRORS_COLUMN = formats.ANNOTATION_COLUMN
_SIGNED_NUMBER = re.compile(r"^-\d[\d.,' ]*$")
MESSAGE_SEPARATOR = "; "
COMMENT_AUTHOR = _("Masivo Migration Console")
# Worded as staging's, so the catalogue's translation serves both.
ERR_UNKNOWN_FORMAT = _("“%(name)s” is not a CSV, TSV, XLSX or JSON file (judged by its name).")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "xlsx": formats.XLSX.content_type}
BAD_CELL_FILL = PatternFill(fill_type="solid", start_color="FFFFC7CE", end_color="FFFFC7CE")
BOLD = Font(bold=True)
# Comments are held in memory until the workbook is saved; past this many, only fills.
MAX_COMMENTS = 10_000
# A CSV being written moves from memory to a temporary file past this size.
SPOOL_BYTES = 8 * 1024 * 1024
# The formats by extension, as staging picks them (``customers.staging.format_for``).
_FORMATS = {fmt().get_extension(): fmt for fmt in formats.STAGING_FORMATS} | {"txt": formats.CSV}
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\\/:*?"<>|]+')


class Problem(Protocol):
    """What a problem must have (``customers.resources.base.RowProblem`` has it)."""

    @property
    def row(self) -> int | None: ...
    @property
    def column(self) -> str: ...
    @property
    def message(self) -> object: ...


@dataclass(slots=True)
class _Source:
    table: formats.SourceTable
    headers: list  # the header cells as the file has them
    delimiter: str = ","
    is_typed: bool = False  # an XLSX: values keep their types


@dataclass(slots=True)
class _RowNotes:
    messages: list[str] = field(default_factory=list)  # the errors column
    cells: dict[int, list[str]] = field(default_factory=dict)  # column index -> messages


_NO_NOTES = _RowNotes()


def _column_key(value: object) -> str:
    """A header or problem column as compared: no BOM, trimmed, NFC, casefolded."""
    text = "" if value is None else str(value).replace("\ufeff", "")
    return unicodedata.normalize("NFC", text).strip().casefold()


def file_level_problems(problems: Iterable[Problem]) -> list[Problem]:
    """The problems of the file as a whole (no row): the caller shows them apart."""
    return [problem for problem in problems if problem.row is None]


def error_file_name(*, file_name: str, as_format: str) -> str:
    """``C:\\exports\\customers.csv`` -> ``customers-errors.xlsx``."""
    base = re.split(r"[\\/]", file_name)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = _UNSAFE_NAME.sub("_", stem).strip(" ._") or "file"
    return f"{stem}-{ERRORS_COLUMN}.{as_format}"


def _text_headers(*, content: bytes, table: formats.SourceTable, default: str) -> tuple[list, str]:
    """The header as the file has it, and the delimiter that reads it as the format did."""
    codec, _label = formats.text_encoding(content)
    wanted = [_column_key(h) for h in table.headers]
    for delimiter in dict.fromkeys((default, *formats.CSV_DELIMITERS)):
        text = io.TextIOWrapper(io.BytesIO(content), encoding=codec, newline="")
        header = next(csv.reader(text, delimiter=delimiter), [])
        if [_column_key(h) for h in header] == wanted:
            return [h.replace("\ufeff", "") for h in header], delimiter
    return list(table.headers), default


def _xlsx_headers(*, content: bytes, width: int) -> list:
    with formats.workbook_opened(content) as book:
        first = next(book.worksheets[0].iter_rows(max_row=1, values_only=True), ())
    cells = ["" if v is None else v for v in first[:width]]
    return cells + [""] * (width - len(cells))


def _source_read(*, file_name: str, content: bytes) -> _Source:
    """The file's rows (by the staging format) and its original header."""
    fmt = _FORMATS.get(PurePath(file_name).suffix.lower().lstrip("."))
    if fmt is None:
        raise formats.FileReadError(ERR_UNKNOWN_FORMAT % {"name": file_name})
    table = fmt().create_dataset(content)
    if isinstance(table, formats.NestedDocument):
        raise formats.FileReadError(formats.ERR_JSON_NOT_LIST)
    if fmt is formats.XLSX:
        headers = _xlsx_headers(content=content, width=len(table.headers))
        return _Source(table=table, headers=headers, is_typed=True)
    if fmt is formats.JSON:
        return _Source(table=table, headers=list(table.headers))
    headers, delimiter = _text_headers(content=content, table=table, default=fmt.delimiter)
    return _Source(table=table, headers=headers, delimiter=delimiter)


def _row_notes(*, problems: Iterable[Problem], headers: list) -> dict[int, _RowNotes]:
    """Each row's messages, and which of its cells they are about."""
    columns: dict[str, list[int]] = {}
    for index, header in enumerate(headers):
        columns.setdefault(_column_key(header), []).append(index)
    notes: dict[int, _RowNotes] = {}
    for problem in problems:
        if problem.row is None:
            continue
        note = notes.setdefault(problem.row, _RowNotes())
        message = str(problem.message)
        indexes = columns.get(_column_key(problem.column), []) if problem.column else []
        name = str(headers[indexes[0]]) if indexes else problem.column
        note.messages.append(f"{name}: {message}" if name else message)
        for index in indexes:
            note.cells.setdefault(index, []).append(message)
    return notes


def _rows(*, source: _Source, notes: dict[int, _RowNotes]) -> Iterator[tuple[list, _RowNotes]]:
    """Each row as header-wide cells, its errors text, then any extra cells."""
    width = len(source.headers)
    for number, values in source.table.rows():
        note = notes.get(number, _NO_NOTES)
        cells = list(values[:width]) + [None] * (width - len(values))
        yield [*cells, MESSAGE_SEPARATOR.join(note.messages), *values[width:]], note


def _text(value: object) -> str:
    """A value as the text of a cell: dates in ISO 8601, JSON values as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bool | dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _csv_safe(text: str) -> str:
    """Formula-safe, but a plain signed number (``-5``, ``-1.234,50``) is left as it is:
    a spreadsheet reads it as a number, and the fixed file must read back the same."""
    if _SIGNED_NUMBER.match(text):
        return text
    return spreadsheet_safe(text)


def annotated_csv(*, file_name: str, content: bytes, problems: Iterable[Problem]) -> bytes:
    """The file as CSV with its problems in a last ``errors`` column."""
    source = _source_read(file_name=file_name, content=content)
    notes = _row_notes(problems=problems, headers=source.headers)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as buffer:
        text = io.TextIOWrapper(buffer, encoding="utf-8-sig", newline="")
        writer = csv.writer(text, delimiter=source.delimiter, lineterminator="\r\n")
        writer.writerow([_csv_safe(_text(h)) for h in [*source.headers, ERRORS_COLUMN]])
        for values, _note in _rows(source=source, notes=notes):
            writer.writerow([_csv_safe(_text(value)) for value in values])
        text.detach()  # flushed, and the buffer stays open
        buffer.seek(0)
        return buffer.read()


def _xlsx_cell(*, sheet: WriteOnlyWorksheet, value: object, is_typed: bool) -> WriteOnlyCell:
    """A cell that keeps text as text (never a formula) and typed values as they are."""
    if not is_typed or not isinstance(value, int | float | dt.date | dt.time | dt.timedelta):
        text = ILLEGAL_CHARACTERS_RE.sub("", _text(value))  # characters XLSX cannot hold
        cell = WriteOnlyCell(sheet, value=text or None)
        if text:
            cell.data_type = "s"
        return cell
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        cell.number_format = "yyyy-mm-dd"
    return cell


def _xlsx_row(
    *, sheet: WriteOnlyWorksheet, values: list, note: _RowNotes, source: _Source, comments: int
) -> tuple[list[WriteOnlyCell], int]:
    """The row's cells, bad ones filled and commented (while comments are left)."""
    cells = [_xlsx_cell(sheet=sheet, value=v, is_typed=source.is_typed) for v in values]
    if note.messages:
        cells[len(source.headers)].fill = BAD_CELL_FILL  # the errors column
    for index, messages in note.cells.items():
        cells[index].fill = BAD_CELL_FILL
        if comments < MAX_COMMENTS:
            text = "\n".join(messages)
            height = 20 * (len(messages) + len(text) // 40 + 1)
            cells[index].comment = Comment(text, str(COMMENT_AUTHOR), height=height, width=240)
            comments += 1
    return cells, comments


def _sheet_discard(sheet: WriteOnlyWorksheet) -> None:
    """Remove the temporary file of a sheet that will not be saved (openpyxl would keep it
    until the process exits): the file turned out unreadable halfway."""
    sheet.close()
    sheet._writer.cleanup()


def annotated_xlsx(*, file_name: str, content: bytes, problems: Iterable[Problem]) -> bytes:
    """The file as an XLSX workbook: bad cells filled and commented, an ``errors`` column."""
    source = _source_read(file_name=file_name, content=content)
    notes = _row_notes(problems=problems, headers=source.headers)
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.freeze_panes = "A2"
    header = [_xlsx_cell(sheet=sheet, value=h, is_typed=source.is_typed) for h in source.headers]
    errors_header = _xlsx_cell(sheet=sheet, value=ERRORS_COLUMN, is_typed=False)
    errors_header.font = BOLD
    sheet.append([*header, errors_header])
    comments = 0
    try:
        for values, note in _rows(source=source, notes=notes):
            cells, comments = _xlsx_row(
                sheet=sheet, values=values, note=note, source=source, comments=comments
            )
            sheet.append(cells)
    except BaseException:
        _sheet_discard(sheet)
        raise
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as buffer:
        book.save(buffer)
        buffer.seek(0)
        return buffer.read()


def error_file(
    *,
    file_name: str,
    content: bytes,
    problems: Iterable[Problem],
    as_format: Literal["csv", "xlsx"] = "xlsx",
) -> tuple[bytes, str, str]:
    """The error file of an upload: its bytes, its download name and its content type.

    Raises ``FileReadError`` when the file cannot be read (as staging would have said).
    """
    writers = {"csv": annotated_csv, "xlsx": annotated_xlsx}
    if as_format not in writers:
        raise ValueError(f"an error file is CSV or XLSX, not {as_format!r}")
    data = writers[as_format](file_name=file_name, content=content, problems=problems)
    return data, error_file_name(file_name=file_name, as_format=as_format), CONTENT_TYPES[as_format]
