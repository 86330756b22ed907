"""Delimited text (CSV, TSV): the encoding found over the whole file, the delimiter
recognised, rows decoded as they are read."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator

from customers.formats.base import (
    CSV_DELIMITERS,
    DECODE_CHUNK_BYTES,
    ERR_EMPTY,
    ERR_HEADER_UNREADABLE,
    ERR_NUL_BYTES,
    ERR_ROW_UNREADABLE,
    ERR_UTF16,
    FileReadError,
    SourceTable,
    StagingFormat,
    header_key,
    header_text,
)


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


class _TextTableFormat(StagingFormat):
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
            raw_headers = [header_text(h) for h in next(header_reader)]
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
