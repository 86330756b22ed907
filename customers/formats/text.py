"""Delimited text (CSV, TSV): the encoding found over the whole file, the delimiter
recognised, rows decoded as they are read from the file (bytes, a path or a file object)."""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import io
import os
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from console.messages import Message
from customers.formats.base import (
    CSV_DELIMITERS,
    ERR_EMPTY,
    ERR_HEADER_UNREADABLE,
    ERR_NUL_BYTES,
    ERR_ROW_UNREADABLE,
    ERR_UTF16,
    FileReadError,
    FileSource,
    SourceTable,
    StagingFormat,
    header_key,
    header_text,
)


def _decoded_chunks(chunks: Iterable[bytes], codec: str) -> Iterator[str]:
    """``chunks`` decoded one after the other; raises UnicodeDecodeError where it fails."""
    decoder = codecs.getincrementaldecoder(codec)()
    for chunk in chunks:
        yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


def _is_utf8(chunks: Iterable[bytes]) -> tuple[bool, bool]:
    """Whether the bytes decode as UTF-8, and whether any of them is NUL; one pass."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    decodes, has_nul = True, False
    for chunk in chunks:
        has_nul = has_nul or b"\x00" in chunk
        if decodes:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                decodes = False
    if decodes:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            decodes = False
    return decodes, has_nul


def _decodes(chunks: Iterable[bytes], codec: str) -> bool:
    try:
        for _text in _decoded_chunks(chunks, codec):
            pass
    except UnicodeDecodeError:
        return False
    return True


def text_encoding(data: bytes | FileSource) -> tuple[str, str]:
    """The codec of a text export and its name for people: UTF-16 with its BOM (Excel's
    "Unicode text"), UTF-8 (BOM or not), else Windows-1252, else Latin-1.

    The file is read and decoded a slice at a time and nothing decoded is kept, so
    checking a big file costs a slice of memory, whether it is given as bytes or on disk."""
    source = data if isinstance(data, FileSource) else FileSource(data)
    if source.head(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        try:
            if any("\x00" in text for text in _decoded_chunks(source.chunks(), "utf-16")):
                raise FileReadError(ERR_NUL_BYTES)
        except UnicodeDecodeError as exc:
            raise FileReadError(ERR_UTF16) from exc
        return "utf-16", "UTF-16"
    is_utf8, has_nul = _is_utf8(source.chunks())
    if has_nul:
        raise FileReadError(ERR_NUL_BYTES)
    if is_utf8:
        return "utf-8-sig", "UTF-8"
    if _decodes(source.chunks(), "cp1252"):
        return "cp1252", "Windows-1252"
    return "latin-1", "Latin-1"


def decode_text(data: bytes) -> tuple[str, str]:
    """The whole text of an export, decoded as ``text_encoding`` finds, and its encoding."""
    codec, label = text_encoding(data)
    return data.decode(codec), label


@contextlib.contextmanager
def text_stream(source: FileSource, codec: str) -> Iterator[io.TextIOWrapper]:
    """The file as text, decoded as it is read (never held as one string); line ends are
    left as they are, for the ``csv`` module and for JSON's line numbers."""
    with source.open() as handle:
        text = io.TextIOWrapper(handle, encoding=codec, newline="")
        try:
            yield text
        finally:
            text.detach()


def _guess_delimiter(first_line: str, default: str) -> str:
    counts = {d: first_line.count(d) for d in CSV_DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] > counts.get(default, 0) else default


class _TextTableFormat(StagingFormat):
    """A delimited text file read with the ``csv`` module."""

    content_type = "text/csv"
    delimiter = ","

    def create_dataset(self, in_stream: bytes | str | FileSource | os.PathLike | BinaryIO):
        """The file's table: ``in_stream`` is its text (``str``), or the file itself as
        bytes, a path or a binary file object (``FileSource``), read from there."""
        if isinstance(in_stream, str):
            source = FileSource(in_stream.lstrip("\ufeff").encode())
            codec, encoding = "utf-8", "UTF-8"
        else:
            source = FileSource(in_stream)
            codec, encoding = text_encoding(source)
        with text_stream(source, codec) as text:
            first_line = next((line for line in text if line.strip()), "")
        if not first_line:
            raise FileReadError(ERR_EMPTY)
        delimiter = _guess_delimiter(first_line, self.delimiter)
        with text_stream(source, codec) as text:
            try:
                header = next(csv.reader(text, delimiter=delimiter, strict=True))
            except (csv.Error, StopIteration) as exc:
                raise FileReadError(Message.of(ERR_HEADER_UNREADABLE, error=str(exc))) from exc
        raw_headers = [header_text(h) for h in header]
        return SourceTable(
            headers=[header_key(h) for h in raw_headers],
            _rows=functools.partial(_csv_rows, source, codec, delimiter),
            encoding=encoding,
            raw_headers=raw_headers,
        )


def _csv_rows(source: FileSource, codec: str, delimiter: str) -> Iterator[tuple[int, list]]:
    """The rows after the header by row number, blank ones left out."""
    with text_stream(source, codec) as text:
        reader = csv.reader(text, delimiter=delimiter, strict=True)
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
                Message.of(ERR_ROW_UNREADABLE, error=str(exc)), row=row_number + 1
            ) from exc


class CSV(_TextTableFormat):
    title = "csv"
    extension = "csv"


class TSV(_TextTableFormat):
    title = "tsv"
    extension = "tsv"
    content_type = "text/tab-separated-values"
    delimiter = "\t"
