"""The error file an operator downloads, fixes offline and uploads again: every row of the
file as it came, its problems in a last ``errors`` column, and in a workbook each bad cell
filled and commented."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import unicodedata
from dataclasses import dataclass

import openpyxl
import pytest
from openpyxl.worksheet import _writer as openpyxl_writer

from customers import errorfile
from customers.errorfile import (
    BAD_CELL_FILL,
    annotated_csv,
    annotated_xlsx,
    error_file,
    error_file_name,
    file_level_problems,
)
from customers.formats import FileReadError


@dataclass(frozen=True)
class RowProblem:
    """The shape of ``customers.resources.base.RowProblem``: all an error file reads."""

    row: int | None
    column: str
    message: str


NOT_MAPPED = "“X” is not in the value map"
# A spreadsheet's date cells are naive.
BORN = dt.datetime(1990, 1, 2)  # noqa: DTZ001
SEEN = dt.datetime(1985, 6, 7, 8, 30)  # noqa: DTZ001
FORMULA = '=HYPERLINK("http://x")'


def _csv_rows(data: bytes, delimiter: str = ",") -> list[list[str]]:
    assert data.startswith(codecs.BOM_UTF8)
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=delimiter))


def _sheet(data: bytes):
    return openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]


def _is_flagged(cell) -> bool:
    return cell.fill.fill_type == "solid" and cell.fill.fgColor.rgb == BAD_CELL_FILL.fgColor.rgb


def _workbook(rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for cells in sheet.iter_rows():
        for cell in cells:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # a source cell holding formula-looking text
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


SEMICOLON_CSV = (
    "\ufeffId;Código;Sexo\r\n000123;Peñalolén;X\r\n\r\n000124;Ñuñoa;F\r\n000125;Maipú;Z\r\n"
).encode()


def test_csv_keeps_the_original_header_cells_and_delimiter_and_adds_errors():
    problems = [RowProblem(2, "sexo", NOT_MAPPED), RowProblem(5, "sexo", NOT_MAPPED)]

    data, name, content_type = error_file(
        file_name="customers.csv", content=SEMICOLON_CSV, problems=problems, as_format="csv"
    )

    assert (name, content_type) == ("customers-errors.csv", "text/csv; charset=utf-8")
    assert _csv_rows(data, ";") == [
        ["Id", "Código", "Sexo", "errors"],
        ["000123", "Peñalolén", "X", f"Sexo: {NOT_MAPPED}"],
        ["000124", "Ñuñoa", "F", ""],  # a row without problems is kept; the blank row is not
        ["000125", "Maipú", "Z", f"Sexo: {NOT_MAPPED}"],
    ]


def test_csv_joins_the_messages_of_a_row_and_a_whole_row_message_has_no_prefix():
    problems = [
        RowProblem(2, "Id", "already staged"),
        RowProblem(2, "", "has 2 cells but the header has 3"),
        RowProblem(2, "sexo", NOT_MAPPED),
    ]

    rows = _csv_rows(
        annotated_csv(file_name="c.csv", content=SEMICOLON_CSV, problems=problems), ";"
    )

    assert (
        rows[1][-1] == f"Id: already staged; has 2 cells but the header has 3; Sexo: {NOT_MAPPED}"
    )


def test_a_windows_1252_tsv_comes_out_as_utf8_with_tabs():
    content = "id\tnombre\r\nc-1\tJosé\r\n".encode("cp1252")

    data = annotated_csv(
        file_name="old.tsv", content=content, problems=[RowProblem(2, "nombre", "too short")]
    )

    assert _csv_rows(data, "\t") == [
        ["id", "nombre", "errors"],
        ["c-1", "José", "nombre: too short"],
    ]


def test_problem_column_matches_the_header_whatever_its_case_accents_form_or_spaces():
    header = unicodedata.normalize("NFD", " Código ")  # decomposed accent, padded
    content = f"id,{header}\r\nc-1,ABC\r\n".encode()
    problems = [RowProblem(2, "CÓDIGO", "is not a code")]

    rows = _csv_rows(annotated_csv(file_name="c.csv", content=content, problems=problems))
    sheet = _sheet(annotated_xlsx(file_name="c.csv", content=content, problems=problems))

    assert rows[1] == ["c-1", "ABC", f"{header}: is not a code"]
    assert _is_flagged(sheet["B2"])
    assert sheet["B2"].comment.text == "is not a code"
    assert not _is_flagged(sheet["A2"])


def test_a_problem_without_a_row_lands_on_no_row():
    problems = [
        RowProblem(None, "", "The file has a header but no rows."),
        RowProblem(None, "x", "y"),
    ]

    rows = _csv_rows(
        annotated_csv(file_name="c.csv", content=SEMICOLON_CSV, problems=problems), ";"
    )
    sheet = _sheet(annotated_xlsx(file_name="c.csv", content=SEMICOLON_CSV, problems=problems))

    assert [row[-1] for row in rows[1:]] == ["", "", ""]
    assert not any(_is_flagged(cell) or cell.comment for row in sheet.iter_rows() for cell in row)
    assert file_level_problems(problems) == problems


def test_xlsx_from_xlsx_fills_and_comments_the_bad_cell_and_keeps_typed_values():
    content = _workbook(
        [
            ["Id", "Sexo", "Born", "Points"],
            ["000123", "X", BORN, 12.5],
            ["000124", "F", SEEN, 3],
        ]
    )
    problems = [RowProblem(2, "sexo", NOT_MAPPED), RowProblem(2, "Sexo", "second")]

    data, name, content_type = error_file(
        file_name="legacy.xlsx", content=content, problems=problems, as_format="xlsx"
    )

    sheet = _sheet(data)
    assert (name, content_type) == ("legacy-errors.xlsx", errorfile.CONTENT_TYPES["xlsx"])
    assert [c.value for c in sheet[1]] == ["Id", "Sexo", "Born", "Points", "errors"]
    assert sheet["E1"].font.b
    assert _is_flagged(sheet["B2"])
    assert sheet["B2"].comment.text == f"{NOT_MAPPED}\nsecond"
    assert sheet["E2"].value == f"Sexo: {NOT_MAPPED}; Sexo: second"
    assert [_is_flagged(sheet[c]) for c in ("A2", "C2", "D2", "B3", "E3")] == [False] * 5
    assert sheet["A2"].value == "000123"
    assert sheet["C2"].value == BORN
    assert sheet["C2"].is_date
    assert sheet["C3"].value == SEEN
    assert (sheet["D2"].value, sheet["D3"].value) == (12.5, 3)
    assert sheet["E3"].value is None


def test_xlsx_to_csv_writes_dates_in_iso_8601():
    content = _workbook([["id", "born", "seen"], ["c-1", BORN, SEEN]])

    rows = _csv_rows(annotated_csv(file_name="c.xlsx", content=content, problems=[]))

    assert rows == [
        ["id", "born", "seen", "errors"],
        ["c-1", "1990-01-02", "1985-06-07T08:30:00", ""],
    ]


def test_xlsx_from_text_keeps_every_cell_as_text():
    content = b"id,points\r\n000123,0012.50\r\n"

    sheet = _sheet(annotated_xlsx(file_name="c.csv", content=content, problems=[]))

    assert (sheet["A2"].value, sheet["B2"].value) == ("000123", "0012.50")
    assert sheet["A2"].data_type == sheet["B2"].data_type == "s"


def test_a_formula_looking_value_stays_text_in_both_outputs():
    content = f'id,link,balance\r\nc-1,"{FORMULA.replace(chr(34), chr(34) * 2)}",-5\r\n'.encode()
    assert annotated_csv(file_name="c.csv", content=b"id\r\n-5+cmd|x\r\n", problems=[]).endswith(
        b"'-5+cmd|x,\r\n"
    )
    problems = [RowProblem(2, "link", "not a link")]

    rows = _csv_rows(annotated_csv(file_name="c.csv", content=content, problems=problems))
    sheet = _sheet(annotated_xlsx(file_name="c.csv", content=content, problems=problems))
    from_xlsx = _sheet(
        annotated_xlsx(
            file_name="c.xlsx", content=_workbook([["id", "link"], ["c-1", FORMULA]]), problems=[]
        )
    )

    # A negative number is no formula: it stays as it is, so the fixed file reads back.
    assert rows[1] == ["c-1", "'" + FORMULA, "-5", "link: not a link"]
    for cell in (sheet["B2"], from_xlsx["B2"]):
        assert (cell.value, cell.data_type) == (FORMULA, "s")
    assert (sheet["C2"].value, sheet["C2"].data_type) == ("-5", "s")


def test_a_formula_looking_header_is_made_safe_in_csv():
    rows = _csv_rows(annotated_csv(file_name="c.csv", content=b"=id\r\n1\r\n", problems=[]))

    assert rows[0] == ["'=id", "errors"]


def test_a_json_list_becomes_csv_rows_numbered_as_the_format_numbers_them():
    document = [
        {"id": "000123", "sexo": "F", "tags": ["a"]},
        {"id": "000124", "sexo": "X", "points": 10, "vip": True},
    ]
    problems = [RowProblem(2, "sexo", NOT_MAPPED)]  # JSON rows count from 1: the 2nd object

    data, name, _type = error_file(
        file_name="dump.json",
        content=json.dumps(document).encode(),
        problems=problems,
        as_format="csv",
    )

    assert name == "dump-errors.csv"
    assert _csv_rows(data) == [
        ["id", "sexo", "tags", "points", "vip", "errors"],
        ["000123", "F", '["a"]', "", "", ""],
        ["000124", "X", "", "10", "true", f"sexo: {NOT_MAPPED}"],
    ]


def test_a_row_longer_than_the_header_keeps_its_extra_cells_after_errors():
    content = b"id,name\r\nc-1,Ana,extra\r\nc-2\r\n"
    problems = [RowProblem(2, "", "has 3 cells but the header has 2")]

    rows = _csv_rows(annotated_csv(file_name="c.csv", content=content, problems=problems))

    assert rows[1:] == [
        ["c-1", "Ana", "has 3 cells but the header has 2", "extra"],
        ["c-2", "", ""],
    ]


def test_comments_stop_at_the_limit_but_every_bad_cell_is_filled(monkeypatch):
    monkeypatch.setattr(errorfile, "MAX_COMMENTS", 1)
    content = b"id,sexo\r\nc-1,X\r\nc-2,Y\r\n"
    problems = [RowProblem(2, "sexo", "bad"), RowProblem(3, "sexo", "bad")]

    sheet = _sheet(annotated_xlsx(file_name="c.csv", content=content, problems=problems))

    assert [_is_flagged(sheet["B2"]), _is_flagged(sheet["B3"])] == [True, True]
    assert [bool(sheet["B2"].comment), bool(sheet["B3"].comment)] == [True, False]
    assert sheet["C3"].value == "sexo: bad"


@pytest.mark.parametrize("as_format", ["csv", "xlsx"])
def test_a_file_unreadable_halfway_is_refused_and_leaves_no_temporary_file(as_format):
    content = b'id,name\r\nc-1,Ana\r\nc-2,"Bo\r\n'  # a quote left open on row 3
    temporary_files = list(openpyxl_writer.ALL_TEMP_FILES)

    with pytest.raises(FileReadError) as raised:
        error_file(file_name="c.csv", content=content, problems=[], as_format=as_format)

    assert raised.value.row == 3
    assert temporary_files == openpyxl_writer.ALL_TEMP_FILES


@pytest.mark.parametrize(
    ("file_name", "content"),
    [("notes.pdf", b"id\r\n1\r\n"), ("body.json", b'{"customers": []}')],
    ids=["unknown-extension", "nested-json"],
)
def test_a_file_that_is_not_a_table_is_refused(file_name, content):
    with pytest.raises(FileReadError):
        error_file(file_name=file_name, content=content, problems=[], as_format="csv")


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("customers.csv", "customers-errors.xlsx"),
        ("C:\\exports\\Clientes 2024.TXT", "Clientes 2024-errors.xlsx"),
        ("../../etc/pass:wd.json", "pass_wd-errors.xlsx"),
        (".csv", "file-errors.xlsx"),
    ],
)
def test_error_file_name_comes_from_the_source_name(file_name, expected):
    assert error_file_name(file_name=file_name, as_format="xlsx") == expected
