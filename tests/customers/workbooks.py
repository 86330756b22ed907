"""Workbooks written part by part, for the tests of what a workbook may cost: the first
sheet's rows and the shared strings as given (blocks of XML, written one at a time, so a
test that builds a part of hundreds of megabytes stays small in memory), and any other
member as given (an incompressible padding, say)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path
from xml.sax.saxutils import escape

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
SHEET = "xl/worksheets/sheet1.xml"
STRINGS = "xl/sharedStrings.xml"
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_TYPES = "application/vnd.openxmlformats-officedocument.spreadsheetml"


class Shared(int):
    """A cell that shows the shared string of this index."""


def _parts(*, has_strings: bool) -> dict[str, str]:
    strings_type = (
        f'<Override PartName="/{STRINGS}" ContentType="{_TYPES}.sharedStrings+xml"/>'
        if has_strings
        else ""
    )
    strings_rel = (
        f'<Relationship Id="rId2" Type="{_RELS}/sharedStrings" Target="sharedStrings.xml"/>'
        if has_strings
        else ""
    )
    package = "http://schemas.openxmlformats.org/package/2006"
    return {
        "[Content_Types].xml": (
            f'<Types xmlns="{package}/content-types">'
            f'<Default Extension="rels" ContentType="{package}/relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_TYPES}.sheet.main+xml"/>'
            f'<Override PartName="/{SHEET}" ContentType="{_TYPES}.worksheet+xml"/>'
            f"{strings_type}</Types>"
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{package}/relationships">'
            f'<Relationship Id="rId1" Type="{_RELS}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{NS}" xmlns:r="{_RELS}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{package}/relationships">'
            f'<Relationship Id="rId1" Type="{_RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
            f"{strings_rel}</Relationships>"
        ),
    }


def cell(column: int, row: int, value) -> str:
    reference = f"{_column_letters(column)}{row}"
    if isinstance(value, Shared):
        return f'<c r="{reference}" t="s"><v>{int(value)}</v></c>'
    if isinstance(value, int | float):
        return f'<c r="{reference}"><v>{value}</v></c>'
    return f'<c r="{reference}" t="inlineStr"><is><t>{escape(str(value))}</t></is></c>'


def row(number: int, *values) -> bytes:
    """A ``<row>`` of inline strings, numbers and shared strings (``Shared``)."""
    cells = "".join(cell(column, number, value) for column, value in enumerate(values, 1))
    return f'<row r="{number}">{cells}</row>'.encode()


def rows(table: list[list]) -> list[bytes]:
    return [row(number, *values) for number, values in enumerate(table, start=1)]


def texts(values: Iterable[str]) -> Iterable[bytes]:
    """Shared strings as ``<si>`` items."""
    for value in values:
        yield f"<si><t>{escape(value)}</t></si>".encode()


def _column_letters(column: int) -> str:
    letters = ""
    while column:
        column, remainder = divmod(column - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def write_workbook(
    target: Path | io.BytesIO,
    *,
    sheet_data: Iterable[bytes],
    shared_strings: Iterable[bytes] | None = None,
    sheet_head: bytes = b"",
    sheet_tail: bytes = b"",
    members: dict[str, bytes] | None = None,
    compresslevel: int = 6,
) -> None:
    """A workbook whose first sheet holds ``sheet_data`` in its ``<sheetData>`` (after
    ``sheet_head``, before ``sheet_tail``) and whose shared strings hold
    ``shared_strings``, each block written as it comes; ``members`` are stored as given."""
    has_strings = shared_strings is not None
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as archive:
        for name, text in _parts(has_strings=has_strings).items():
            archive.writestr(name, text)
        with archive.open(SHEET, "w", force_zip64=True) as sheet:
            sheet.write(f'<worksheet xmlns="{NS}">'.encode() + sheet_head + b"<sheetData>")
            for block in sheet_data:
                sheet.write(block)
            sheet.write(b"</sheetData>" + sheet_tail + b"</worksheet>")
        if has_strings:
            with archive.open(STRINGS, "w", force_zip64=True) as strings:
                strings.write(f'<sst xmlns="{NS}">'.encode())
                for block in shared_strings:
                    strings.write(block)
                strings.write(b"</sst>")
        for name, content in (members or {}).items():
            archive.writestr(zipfile.ZipInfo(name), content)  # stored, not compressed


def workbook(**parts) -> bytes:
    """``write_workbook`` into bytes."""
    buffer = io.BytesIO()
    write_workbook(buffer, **parts)
    return buffer.getvalue()
