"""JSON files: a list of row objects, read a slice at a time, or one document shaped like
the request body, read whole."""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator
from typing import BinaryIO

from console.messages import Message
from customers.formats.base import (
    ERR_EMPTY,
    ERR_JSON_INVALID,
    ERR_JSON_NOT_LIST,
    ERR_JSON_ROW_NOT_OBJECT,
    ERR_JSON_SHAPE,
    ERR_JSON_TOO_DEEP,
    ERR_JSON_UNREADABLE,
    FileReadError,
    FileSource,
    NestedDocument,
    SourceTable,
    StagingFormat,
    header_key,
    header_text,
)
from customers.formats.jsonstream import SLICE_CHARS, JSONText
from customers.formats.text import text_encoding, text_stream


class JSON(StagingFormat):
    """A JSON file: a list of row objects, or a nested body ``{"customers": [...]}``.

    A list is read from the file a slice at a time (``jsonstream``), twice: once to find
    its columns (every key of every row) and check that it is valid JSON throughout, then
    row by row as it is staged. A nested body is read whole: its customers carry their
    children, and the nested import keeps the document in memory."""

    title = "json"
    extension = "json"
    content_type = "application/json"

    def create_dataset(self, in_stream: bytes | str | FileSource | os.PathLike | BinaryIO):
        if isinstance(in_stream, str):
            source, codec, encoding = FileSource(in_stream.encode()), "utf-8", "UTF-8"
        else:
            source = FileSource(in_stream)
            codec, encoding = text_encoding(source)
        with text_stream(source, codec) as text:
            if _is_blank(text.read):
                raise FileReadError(ERR_EMPTY)
        with text_stream(source, codec) as text, _json_errors():
            reading = JSONText(text.read)
            if reading.is_list():
                headers = _headers(reading.rows())
            else:
                return _nested(reading.document(), encoding)
        return SourceTable(
            headers=[header_key(h) for h in headers],
            _rows=functools.partial(_json_rows, source, codec, headers),
            encoding=encoding,
            first_row_number=1,
            raw_headers=[header_text(h) for h in headers],
        )


def _is_blank(read) -> bool:
    """Whether the text is all whitespace (or nothing), read a slice at a time."""
    while piece := read(SLICE_CHARS):
        if not piece.isspace():
            return False
    return True


@contextlib.contextmanager
def _json_errors() -> Iterator[None]:
    """A file that is not JSON, or that Python cannot read as such, as a FileReadError."""
    try:
        yield
    except FileReadError:
        raise
    except json.JSONDecodeError as exc:
        raise FileReadError(
            Message.of(ERR_JSON_INVALID, error=exc.msg, line=exc.lineno, col=exc.colno)
        ) from exc
    except RecursionError as exc:
        raise FileReadError(ERR_JSON_TOO_DEEP) from exc
    except ValueError as exc:
        # e.g. an integer of more digits than Python converts
        raise FileReadError(Message.of(ERR_JSON_UNREADABLE, error=str(exc))) from exc


def _nested(document: object, encoding: str) -> NestedDocument:
    if not isinstance(document, dict):
        raise FileReadError(ERR_JSON_NOT_LIST)
    customers = document.get("customers")
    if not isinstance(customers, list) or set(document) != {"customers"}:
        raise FileReadError(ERR_JSON_SHAPE)
    return NestedDocument(customers=customers, encoding=encoding)


def _headers(items: Iterator[object]) -> list[str]:
    """Every key of every row, in the order they first appear; the whole list is read,
    so a file that is not JSON further down is refused as such before any row counts."""
    headers: list[str] = []
    seen: set[str] = set()
    is_flat = True
    for item in items:
        if not isinstance(item, dict):
            is_flat = False
            continue
        for key in item:
            if key not in seen:
                seen.add(key)
                headers.append(key)
    if not is_flat:
        raise FileReadError(ERR_JSON_ROW_NOT_OBJECT)
    return headers


def _json_rows(source: FileSource, codec: str, headers: list[str]) -> Iterator[tuple[int, list]]:
    with text_stream(source, codec) as text, _json_errors():
        reading = JSONText(text.read)
        reading.is_list()
        for number, item in enumerate(reading.rows(), start=1):
            yield number, [item.get(h) for h in headers]
