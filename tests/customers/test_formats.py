"""Reading text exports: the encoding is found over the whole file, rows come out the same
every time they are read, and a character is never cut where the file is read in slices."""

import codecs

import pytest

from customers.formats import CSV, DECODE_CHUNK_BYTES, TSV, FileReadError

HEADER = b"id,name,email\r\n"


def _rows(data: bytes, fmt=CSV) -> tuple[str, list[list[str]]]:
    table = fmt().create_dataset(data)
    return table.encoding, [values for _number, values in table.rows()]


def _filler(size: int) -> bytes:
    """ASCII rows of about ``size`` bytes."""
    row = b"c-0,Ana,ana@example.com\r\n"
    return row * (size // len(row))


def test_a_character_across_a_slice_boundary_is_read_whole():
    # The two bytes of "ñ" sit on either side of the first slice's end.
    before = DECODE_CHUNK_BYTES - 1 - len(b"c-1,")
    head = HEADER + _filler(before - 100)
    head += b"p-" + b"9" * (before - len(head) - 4) + b"\r\n"
    data = head + b"c-1,\xc3\xb1and\xc3\xba,n@example.com\r\n"
    assert data.index(b"\xc3") == DECODE_CHUNK_BYTES - 1

    encoding, rows = _rows(data)

    assert encoding == "UTF-8"
    assert rows[-1] == ["c-1", "ñandú", "n@example.com"]


def test_one_windows_1252_byte_far_down_makes_the_whole_file_windows_1252():
    data = HEADER + _filler(3 * DECODE_CHUNK_BYTES) + b"c-2,Jos\xe9,jose@example.com\r\n"

    encoding, rows = _rows(data)

    assert encoding == "Windows-1252"
    assert rows[-1] == ["c-2", "José", "jose@example.com"]


def test_utf8_with_bom_and_utf16_are_read():
    text = "id\tname\r\nc-1\tZoë\r\n"

    assert _rows(codecs.BOM_UTF8 + text.encode(), TSV) == ("UTF-8", [["c-1", "Zoë"]])
    assert _rows(text.encode("utf-16"), TSV) == ("UTF-16", [["c-1", "Zoë"]])


def test_rows_are_the_same_every_time_they_are_read():
    table = CSV().create_dataset(HEADER + b"c-1,Ana,a@example.com\r\n\r\nc-2,Bo,b@example.com\n")

    first = list(table.rows())

    assert first == list(table.rows())
    # Row numbers are the file's lines, the header being row 1; blank rows are skipped.
    assert first == [(2, ["c-1", "Ana", "a@example.com"]), (4, ["c-2", "Bo", "b@example.com"])]
    assert table.headers == ["id", "name", "email"]


def test_the_delimiter_is_found_from_the_header():
    encoding, rows = _rows(b"id;name;email\nc-1;Ana;a@example.com\n")

    assert rows == [["c-1", "Ana", "a@example.com"]]


@pytest.mark.parametrize("data", [b"", b"\r\n  \n\t\n"])
def test_a_blank_file_is_empty(data):
    with pytest.raises(FileReadError, match="empty"):
        CSV().create_dataset(data)


def test_a_utf16_file_that_breaks_off_is_refused():
    with pytest.raises(FileReadError, match="UTF-16"):
        CSV().create_dataset(codecs.BOM_UTF16_LE + "id,name\n".encode("utf-16-le") + b"\x00")
