"""Reading legacy export files: CSV, TSV, XLSX and JSON.

These are django-import-export formats, so the admin's import form offers them, but they
read files the way a legacy export needs: the text encoding is detected (UTF-8, with or
without BOM, else Windows-1252), the delimiter of a CSV is recognised, XLSX files are
opened read-only behind size limits, and rows are produced lazily so a file of hundreds
of thousands of rows is never held as Python objects all at once. A format reads the file
where it is (``FileSource``: a path, an open binary file, or the bytes of a small upload),
a slice at a time, and can read its rows again.

A format's ``create_dataset`` returns a :class:`SourceTable` (flat files) or a
:class:`NestedDocument` (a JSON file shaped like the endpoint's body). Problems with the
file itself raise :class:`FileReadError` with a message an operator can act on.

Modules: ``base`` (limits, messages, ``FileReadError``, ``FileSource``, ``SourceTable``,
``NestedDocument``, ``CellError``), ``text`` (CSV, TSV and text encodings), ``xlsx``
(workbooks; ``xlsx_guard``: what a workbook may cost, ``xlsx_strings``: its shared strings),
``documents`` (JSON), ``jsonstream`` (a JSON list read a slice at a time).
Import from the package.
"""

from customers.formats.base import (
    ANNOTATION_COLUMN,
    CSV_DELIMITERS,
    DECODE_CHUNK_BYTES,
    ERR_EMPTY,
    ERR_HEADER_UNREADABLE,
    ERR_JSON_INVALID,
    ERR_JSON_NOT_LIST,
    ERR_JSON_ROW_NOT_OBJECT,
    ERR_JSON_SHAPE,
    ERR_JSON_TOO_DEEP,
    ERR_JSON_UNREADABLE,
    ERR_NUL_BYTES,
    ERR_ROW_UNREADABLE,
    ERR_TOO_MANY_COLUMNS,
    ERR_UTF16,
    ERR_XLSX_CELL_TOO_LONG,
    ERR_XLSX_ENTITIES,
    ERR_XLSX_MARKUP,
    ERR_XLSX_NO_SHEET,
    ERR_XLSX_NOT_WORKBOOK,
    ERR_XLSX_NOT_ZIP,
    ERR_XLSX_PART_RATIO,
    ERR_XLSX_PART_TOO_BIG,
    ERR_XLSX_PART_TOO_COMPLEX,
    ERR_XLSX_ROW_TOO_BIG,
    ERR_XLSX_SHEET_UNREADABLE,
    ERR_XLSX_TEXT_TOO_BIG,
    ERR_XLSX_TOO_BIG,
    ERR_XLSX_TOO_MANY_ROWS,
    ERR_XLSX_TOO_MANY_TEXTS,
    ERR_XLSX_UNREADABLE,
    MAX_COLUMNS,
    XLSX_MAX_COMPRESSION_RATIO,
    XLSX_MAX_UNCOMPRESSED_BYTES,
    CellError,
    FileReadError,
    FileSource,
    NestedDocument,
    SourceTable,
    column_shown,
    columns_listed,
    header_key,
)
from customers.formats.documents import JSON
from customers.formats.text import CSV, TSV, decode_text, text_encoding
from customers.formats.xlsx import XLSX, check_xlsx_archive, workbook_opened

STAGING_FORMATS = [CSV, TSV, XLSX, JSON]

__all__ = [
    "ANNOTATION_COLUMN",
    "CSV",
    "CSV_DELIMITERS",
    "DECODE_CHUNK_BYTES",
    "ERR_EMPTY",
    "ERR_HEADER_UNREADABLE",
    "ERR_JSON_INVALID",
    "ERR_JSON_NOT_LIST",
    "ERR_JSON_ROW_NOT_OBJECT",
    "ERR_JSON_SHAPE",
    "ERR_JSON_TOO_DEEP",
    "ERR_JSON_UNREADABLE",
    "ERR_NUL_BYTES",
    "ERR_ROW_UNREADABLE",
    "ERR_TOO_MANY_COLUMNS",
    "ERR_UTF16",
    "ERR_XLSX_CELL_TOO_LONG",
    "ERR_XLSX_ENTITIES",
    "ERR_XLSX_MARKUP",
    "ERR_XLSX_NOT_WORKBOOK",
    "ERR_XLSX_NOT_ZIP",
    "ERR_XLSX_NO_SHEET",
    "ERR_XLSX_PART_RATIO",
    "ERR_XLSX_PART_TOO_BIG",
    "ERR_XLSX_PART_TOO_COMPLEX",
    "ERR_XLSX_ROW_TOO_BIG",
    "ERR_XLSX_SHEET_UNREADABLE",
    "ERR_XLSX_TEXT_TOO_BIG",
    "ERR_XLSX_TOO_BIG",
    "ERR_XLSX_TOO_MANY_ROWS",
    "ERR_XLSX_TOO_MANY_TEXTS",
    "ERR_XLSX_UNREADABLE",
    "JSON",
    "MAX_COLUMNS",
    "STAGING_FORMATS",
    "TSV",
    "XLSX",
    "XLSX_MAX_COMPRESSION_RATIO",
    "XLSX_MAX_UNCOMPRESSED_BYTES",
    "CellError",
    "FileReadError",
    "FileSource",
    "NestedDocument",
    "SourceTable",
    "check_xlsx_archive",
    "column_shown",
    "columns_listed",
    "decode_text",
    "header_key",
    "text_encoding",
    "workbook_opened",
]
