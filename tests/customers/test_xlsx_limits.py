"""What a workbook may cost: each part judged from the zip's directory before it is
inflated, each part openpyxl reads scanned as it is inflated (cell length, rows, elements
of a row and of the rest), and the shared strings kept compact."""

from __future__ import annotations

import io
import os
import time
import tracemalloc
from dataclasses import replace

import pytest
from openpyxl.reader.strings import read_string_table

from customers.formats import (
    ERR_XLSX_CELL_TOO_LONG,
    ERR_XLSX_ENTITIES,
    ERR_XLSX_MARKUP,
    ERR_XLSX_PART_RATIO,
    ERR_XLSX_PART_TOO_COMPLEX,
    ERR_XLSX_ROW_TOO_BIG,
    ERR_XLSX_TEXT_TOO_BIG,
    ERR_XLSX_TOO_MANY_ROWS,
    ERR_XLSX_TOO_MANY_TEXTS,
    XLSX,
    FileReadError,
    check_xlsx_archive,
)
from customers.formats.xlsx_guard import PartScan, WorkbookLimits
from customers.formats.xlsx_strings import SharedStrings, shared_strings_read
from tests.customers.workbooks import NS, Shared, row, rows, texts, workbook

MB = 1024 * 1024
SHEET = "xl/worksheets/sheet1.xml"
STRINGS = "xl/sharedStrings.xml"
LIMITS = WorkbookLimits(cell_bytes=1024, rows=100)


def message_start(message) -> str:
    """A message's words up to its first parameter."""
    return str(message).split("%(")[0]


def scanned(data: bytes, *, block: int = 16 * 1024, **limits) -> PartScan:
    """``data`` fed to a scan ``block`` bytes at a time."""
    scan = PartScan(
        part=SHEET, limits=WorkbookLimits(**{"cell_bytes": 1024, "rows": 100, **limits})
    )
    for start in range(0, len(data), block):
        scan.feed(data[start : start + block])
    scan.finish()
    return scan


def read_all(content: bytes) -> list:
    return list(XLSX().create_dataset(content).rows())


# --- the archive's directory ---------------------------------------------------------------


def test_a_part_that_inflates_like_a_bomb_is_refused_though_padding_keeps_the_archive_ratio_low():
    padding = {"xl/media/padding.bin": os.urandom(MB)}
    bomb = workbook(sheet_data=rows([["id"], ["1"]]), sheet_tail=b" " * (8 * MB), members=padding)

    with pytest.raises(FileReadError) as refused:
        check_xlsx_archive(bomb)

    assert message_start(ERR_XLSX_PART_RATIO) in str(refused.value)
    assert f"“{SHEET}”" in str(refused.value)
    assert "to 8 MB" in str(refused.value)


def test_a_small_part_is_not_judged_by_its_ratio():
    content = workbook(
        sheet_data=rows([["id"], ["1"]]),
        sheet_tail=b"<x/>" * 200_000,  # 800 kB that compress 500 times
        members={"xl/media/padding.bin": os.urandom(64 * 1024)},
    )

    check_xlsx_archive(content)

    assert read_all(content) == [(2, ["1"])]


# --- the scan of a part, block by block ----------------------------------------------------


@pytest.mark.parametrize("block", [1, 7, 1000, 16 * 1024])
def test_a_text_longer_than_a_cell_is_refused_wherever_the_blocks_cut_it(block):
    text = b"<row><c><is><t>" + b"a" * 1025 + b"</t></is></c></row>"

    with pytest.raises(FileReadError) as refused:
        scanned(text, block=block)

    assert message_start(ERR_XLSX_CELL_TOO_LONG) in str(refused.value)
    assert "1.0\xa0KB" in str(refused.value)


@pytest.mark.parametrize("block", [1, 7, 1000, 16 * 1024])
def test_texts_as_long_as_a_cell_may_be_are_read(block):
    text = b"<row><c><is><t>" + (b"a" * 1000 + b"</t><t>") * 20 + b"</t></is></c></row>"

    assert scanned(text, block=block).rows == 1


@pytest.mark.parametrize("tag", [b"row", b"x:row"])
def test_rows_past_the_limit_are_refused_with_or_without_a_namespace_prefix(tag):
    data = b"".join(b'<%s r="%d"></%s>' % (tag, n, tag) for n in range(1, 102))

    with pytest.raises(FileReadError) as refused:
        scanned(data, block=100)

    assert message_start(ERR_XLSX_TOO_MANY_ROWS) in str(refused.value)
    assert "more than 100 rows" in str(refused.value)


def test_rows_are_counted_exactly_across_blocks():
    data = b"".join(b'<row r="%d" spans="1:2"><c><v>1</v></c></row><row/>' % n for n in range(50))

    for block in (1, 3, 64, 4096):
        assert scanned(data, block=block).rows == 100


def test_a_row_of_too_many_elements_is_refused():
    wide = b"<row>" + b"<c><v>1</v></c>" * 60 + b"</row>"

    with pytest.raises(FileReadError) as refused:
        scanned(wide, entry_elements=100)

    assert message_start(ERR_XLSX_ROW_TOO_BIG) in str(refused.value)
    assert scanned(wide, entry_elements=121).rows == 1


def test_a_row_of_too_many_bytes_is_refused():
    big = b"<row>" + (b"<c><v>" + b"1" * 1000 + b"</v></c>") * 20 + b"</row>"

    with pytest.raises(FileReadError, match="holds more than"):
        scanned(big, entry_bytes=10_000)


def test_elements_between_rows_count_for_the_whole_part():
    junk = b"<j/>" * 60
    data = (b"<row/>" + junk) * 3

    with pytest.raises(FileReadError) as refused:
        scanned(data, entry_elements=100)

    assert message_start(ERR_XLSX_PART_TOO_COMPLEX) in str(refused.value)


def test_a_row_left_open_adds_to_the_row_that_holds_it():
    nested = (b"<row>" + b"<c/>" * 40) * 3

    with pytest.raises(FileReadError, match="A row of"):
        scanned(nested, entry_elements=100)


@pytest.mark.parametrize(
    "markup",
    [b"<!-- a<b -->", b"<![CDATA[a<b]]>", b"<?pi a<b?>"],
    ids=["comment", "cdata", "processing instruction"],
)
@pytest.mark.parametrize("block", [1, 16 * 1024])
def test_comments_cdata_and_processing_instructions_are_refused(markup, block):
    with pytest.raises(FileReadError) as refused:
        scanned(b"<row><c><is><t>x</t></is></c>" + markup + b"</row>", block=block)

    assert str(refused.value) == ERR_XLSX_MARKUP % {"part": SHEET}


def test_a_doctype_is_refused_as_entities():
    with pytest.raises(FileReadError) as refused:
        scanned(b'<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY a "b">]><worksheet/>')

    assert str(refused.value) == str(ERR_XLSX_ENTITIES)


@pytest.mark.parametrize("start", [b"", b"\xef\xbb\xbf"], ids=["plain", "byte order mark"])
def test_the_xml_declaration_is_allowed(start):
    scan = scanned(start + b'<?xml version="1.0" encoding="UTF-8"?><sheetData><row/></sheetData>')

    assert scan.rows == 1


# --- through the format ----------------------------------------------------------------------


@pytest.fixture
def small_cells(settings):
    settings.MIGRATION_XLSX_MAX_CELL_BYTES = 1024


def test_a_sheet_cell_longer_than_the_limit_is_refused_naming_the_part(small_cells):
    content = workbook(
        sheet_head=b'<dimension ref="A1:B3"/>',
        sheet_data=rows([["id", "name"], ["1", "Ana"], ["2", "x" * 5000]]),
    )

    with pytest.raises(FileReadError) as refused:
        read_all(content)

    assert message_start(ERR_XLSX_CELL_TOO_LONG) in str(refused.value)
    assert f"“{SHEET}”" in str(refused.value)


def test_a_cell_too_long_far_into_a_sheet_is_refused_at_its_row(small_cells):
    table = [["id", "name"], *[[str(n), "Ana"] for n in range(2000)], ["x", "x" * 5000]]
    content = workbook(sheet_head=b'<dimension ref="A1:B2002"/>', sheet_data=rows(table))

    with pytest.raises(FileReadError) as refused:
        read_all(content)

    assert message_start(ERR_XLSX_CELL_TOO_LONG) in str(refused.value)
    # Where reading stopped: openpyxl reads the part a block ahead of the rows it gives.
    assert 1500 < refused.value.row <= 2002


def test_a_shared_string_longer_than_the_limit_is_refused_before_any_row_is_read(small_cells):
    content = workbook(
        sheet_data=rows([["id", "name"], ["1", Shared(0)]]), shared_strings=texts(["x" * 5000])
    )

    with pytest.raises(FileReadError) as refused:
        XLSX().create_dataset(content)

    assert message_start(ERR_XLSX_CELL_TOO_LONG) in str(refused.value)
    assert "“xl/sharedStrings.xml”" in str(refused.value)


def test_a_shared_string_of_rich_text_runs_longer_than_the_limit_is_refused(small_cells):
    runs = b"<si>" + (b"<r><t>" + b"x" * 900 + b"</t></r>") * 3 + b"</si>"
    content = workbook(sheet_data=rows([["id", "name"], ["1", Shared(0)]]), shared_strings=[runs])

    with pytest.raises(FileReadError, match="holds a text longer than 1.0"):
        XLSX().create_dataset(content)


def test_a_sheet_with_more_rows_than_the_limit_is_refused(settings):
    settings.MIGRATION_XLSX_MAX_ROWS = 10
    content = workbook(sheet_data=rows([["id"], *[[str(n)] for n in range(20)]]))

    with pytest.raises(FileReadError) as refused:
        read_all(content)

    assert message_start(ERR_XLSX_TOO_MANY_ROWS) in str(refused.value)
    assert "more than 10 rows" in str(refused.value)


def test_a_row_numbered_far_past_the_limit_is_refused_without_reading_the_rows_between():
    content = workbook(sheet_data=[row(1, "id"), row(2, "1"), row(2_000_000_000, "2")])
    started = time.monotonic()

    with pytest.raises(FileReadError, match="more than 1,048,576 rows"):
        read_all(content)

    assert time.monotonic() - started < 20


def test_a_header_of_400_000_cells_is_refused_before_openpyxl_builds_them():
    header = b"".join(b"<c><v>%d</v></c>" % n for n in range(400_000))
    content = workbook(sheet_data=[b'<row r="1">', header, b"</row>", row(2, "1")])
    tracemalloc.start()
    try:
        with pytest.raises(FileReadError) as refused:
            XLSX().create_dataset(content)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert message_start(ERR_XLSX_ROW_TOO_BIG) in str(refused.value)
    assert peak < 50 * MB, f"peak {peak / MB:.0f} MB"


def test_a_row_filled_out_to_a_far_column_is_read_as_wide_as_its_header():
    far = b'<row r="2"><c r="A2" t="inlineStr"><is><t>1</t></is></c><c r="XFD2" s="1"/></row>'
    content = workbook(
        sheet_head=b'<dimension ref="A1:XFD1048576"/>', sheet_data=[row(1, "id", "name"), far]
    )

    assert read_all(content) == [(2, ["1", None])]


# --- the shared strings ----------------------------------------------------------------------


def test_shared_strings_are_read_as_openpyxl_reads_them():
    part = (
        f'<sst xmlns="{NS}"><si><t>plain</t></si><si><t xml:space="preserve"> spaced </t></si>'
        "<si><r><t>rich </t></r><r><rPr><b/></rPr><t>text</t></r></si>"
        "<si><t>kanji</t><rPh sb='0' eb='1'><t>phonetic</t></rPh></si>"
        "<si><t>a_x005F_x000D_b</t></si><si><t/></si><si/></sst>"
    ).encode()

    ours = shared_strings_read(io.BytesIO(part), part=STRINGS, limits=LIMITS)

    assert list(ours) == list(read_string_table(io.BytesIO(part)))
    assert ours[2] == "rich text"


def strings_part(*items: bytes) -> io.BytesIO:
    return io.BytesIO(f'<sst xmlns="{NS}">'.encode() + b"".join(items) + b"</sst>")


def test_too_many_shared_texts_are_refused():
    part = strings_part(*texts(["a", "b", "c", "d"]))

    with pytest.raises(FileReadError) as refused:
        shared_strings_read(part, part=STRINGS, limits=replace(LIMITS, texts=3))

    assert message_start(ERR_XLSX_TOO_MANY_TEXTS) in str(refused.value)


def test_a_shared_text_of_too_many_elements_is_refused_while_it_is_read():
    runs = b"<si>" + b"<r><t>x</t></r>" * 60 + b"</si>"

    with pytest.raises(FileReadError) as refused:
        shared_strings_read(
            strings_part(runs), part=STRINGS, limits=replace(LIMITS, entry_elements=100)
        )

    assert message_start(ERR_XLSX_TEXT_TOO_BIG) in str(refused.value)


def test_elements_between_shared_texts_are_bounded_until_the_next_text_ends():
    junk = b"<j/>" * 60
    part = strings_part(b"<si><t>a</t></si>", junk, junk, b"<si><t>b</t></si>")

    with pytest.raises(FileReadError, match="A text of"):
        shared_strings_read(part, part=STRINGS, limits=replace(LIMITS, entry_elements=100))
    assert list(
        shared_strings_read(
            strings_part(b"<si><t>a</t></si>", junk, b"<si><t>b</t></si>", junk),
            part=STRINGS,
            limits=replace(LIMITS, entry_elements=100),
        )
    ) == ["a", "b"]


def test_texts_inside_another_element_do_not_empty_what_it_holds():
    junk = b"<j/>" * 60
    part = strings_part(b"<x>", b"<si><t>a</t></si>", junk, b"<si><t>b</t></si>", junk, b"</x>")

    with pytest.raises(FileReadError, match="A text of"):
        shared_strings_read(part, part=STRINGS, limits=replace(LIMITS, entry_elements=100))


def test_shared_strings_past_the_memory_wait_in_a_file():
    strings = SharedStrings(memory_bytes=10)
    values = ["first", "ñandú", "", "beyond the memory", "日本語", "last"]
    for value in values:
        strings.append(value)
    strings.finish()

    assert strings.is_spilled
    assert list(strings) == values
    assert strings[-1] == "last"
    with pytest.raises(IndexError):
        strings[len(values)]
    strings.close()


def test_many_distinct_shared_strings_cost_a_few_bytes_each():
    content = workbook(
        sheet_data=rows([["id"], [Shared(0)]]),
        shared_strings=texts(f"customer-{n:06d}" for n in range(50_000)),
    )
    tracemalloc.start()
    try:
        table = XLSX().create_dataset(content)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert list(table.rows()) == [(2, ["customer-000000"])]
    # openpyxl's own list: about 150 bytes a text, 7.5 MB here.
    assert peak < 4 * MB, f"peak {peak / MB:.1f} MB"
