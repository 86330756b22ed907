"""JSON files: a list of row objects, or one document shaped like the request body."""

from __future__ import annotations

import json
from collections.abc import Iterator

from customers.formats.base import (
    ERR_EMPTY,
    ERR_JSON_INVALID,
    ERR_JSON_NOT_LIST,
    ERR_JSON_ROW_NOT_OBJECT,
    ERR_JSON_SHAPE,
    ERR_JSON_TOO_DEEP,
    ERR_JSON_UNREADABLE,
    FileReadError,
    NestedDocument,
    SourceTable,
    StagingFormat,
    header_key,
    header_text,
)
from customers.formats.text import decode_text


class JSON(StagingFormat):
    """A JSON file: a list of row objects, or a nested body ``{"customers": [...]}``."""

    title = "json"
    extension = "json"
    content_type = "application/json"

    def create_dataset(self, in_stream: bytes | str) -> SourceTable | NestedDocument:
        text, encoding = (
            (in_stream, "UTF-8") if isinstance(in_stream, str) else decode_text(in_stream)
        )
        if not text.strip():
            raise FileReadError(ERR_EMPTY)
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FileReadError(
                ERR_JSON_INVALID % {"error": exc.msg, "line": exc.lineno, "col": exc.colno}
            ) from exc
        except RecursionError as exc:
            raise FileReadError(ERR_JSON_TOO_DEEP) from exc
        except ValueError as exc:
            # e.g. an integer of more digits than Python converts
            raise FileReadError(ERR_JSON_UNREADABLE % {"error": exc}) from exc
        if isinstance(document, dict):
            customers = document.get("customers")
            if not isinstance(customers, list) or set(document) != {"customers"}:
                raise FileReadError(ERR_JSON_SHAPE)
            return NestedDocument(customers=customers, encoding=encoding)
        if not isinstance(document, list):
            raise FileReadError(ERR_JSON_NOT_LIST)
        headers: list[str] = []
        seen: set[str] = set()
        for item in document:
            if not isinstance(item, dict):
                raise FileReadError(ERR_JSON_ROW_NOT_OBJECT)
            for key in item:
                if key not in seen:
                    seen.add(key)
                    headers.append(key)

        def rows() -> Iterator[tuple[int, list]]:
            for number, item in enumerate(document, start=1):
                yield number, [item.get(h) for h in headers]

        return SourceTable(
            headers=[header_key(h) for h in headers],
            _rows=rows,
            encoding=encoding,
            first_row_number=1,
            raw_headers=[header_text(h) for h in headers],
        )
