"""A mapping compiled for one file: the file's rows as rows of the kind's own columns.

``mapping_compile`` checks the mapping against the file's headers (every column it names
exists, no header appears twice, no column is left over unless ``unmapped`` is
``ignore``) and turns each field's rule into one plain function of the row's cells, built
once per file: the rows then cost a call per field, so staging through a mapping keeps
nearly the speed of a file already in the console's headers.

A cell is transformed in a fixed order: trimmed (every Unicode space); if empty, the
``default`` or nothing; ``lower``/``upper``; the ``values`` map (exact); then read for the
field's type (``date_format`` and time zone, number separators). A value that cannot be
read becomes a ``CellError`` naming the file's column and the value; the resource reports
it against the row, like any other problem. ``default``, ``value`` and mapped values are
in the field's own form and go to the resource's parser as they are.

A field read from one column costs one call a row (``_cell``): reading the cell, folding
its case and looking up its mapped value are done in the same function, and a date in the
usual full-width form is read there too (``customers.mapping.dates``, which also explains
how a date format is read faster than strptime, with strptime's results).
"""

from __future__ import annotations

import datetime as dt
import operator
import re
import zoneinfo
from collections.abc import Callable

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from console.messages import Message
from customers.formats import (
    ANNOTATION_COLUMN,
    CellError,
    SourceTable,
    column_shown,
    columns_listed,
    header_key,
)
from customers.mapping.dates import date_column, date_reader, trimmed
from customers.mapping.spec import FieldRule, Mapping, MappingError
from customers.resources.base import ERR_RAGGED

ERR_NO_COLUMN = gettext_lazy(
    "Field “%(field)s” reads column “%(column)s”, which the file does not have. The file's "
    "columns are: %(columns)s."
)
ERR_TWICE = gettext_lazy("Column “%(column)s” appears more than once in the file.")
ERR_LEFT_OVER = gettext_lazy(
    'Column(s) %(columns)s are not used by the mapping: map them, or set "unmapped": "ignore".'
)

Cell = Callable[[list], object]
_FOLDS = {"lower": str.lower, "upper": str.upper}
# A value the ``values`` map lacks.
_UNMAPPED = object()


def _text(value) -> str:
    """A cell as text: whole floats without ``.0``, every Unicode space trimmed."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return ("" if value is None else str(value)).strip()


def _number_pattern(decimal: str, thousands: str) -> re.Pattern:
    d = re.escape(decimal or ".")
    if not thousands:
        return re.compile(rf"^-?\d+(?:{d}\d+)?$")
    t = re.escape(thousands)
    return re.compile(rf"^-?(?:\d{{1,3}}(?:{t}\d{{3}})+|\d+)(?:{d}\d+)?$")


def _number_reader(rule: FieldRule, label: str) -> Callable[[object], object]:
    pattern = _number_pattern(rule.decimal_separator, rule.thousands_separator)
    decimal, thousands = rule.decimal_separator or ".", rule.thousands_separator
    default = rule.default

    def read(value):
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            return value  # a spreadsheet's own number: no separators to read
        if not pattern.match(value):
            example = f"1{thousands}234{decimal}50" if thousands else f"1234{decimal}50"
            return CellError(
                label,
                _("“%(value)s” is not a number written like %(example)s")
                % {"value": value, "example": example},
            )
        if thousands:
            value = value.replace(thousands, "")
        return value.replace(decimal, ".")

    return read


def _reader(rule: FieldRule, indexes: list[int], label: str) -> Cell:
    """The raw text (or spreadsheet value) of the rule's source, trimmed."""
    if rule.split_part:
        index, separator, part = indexes[0], rule.separator, rule.split_part - 1

        def split(values):
            parts = _text(values[index]).split(separator)
            return parts[part].strip() if part < len(parts) else ""

        return split
    if len(indexes) > 1:
        separator, cells = rule.separator, operator.itemgetter(*indexes)

        def join(values):
            texts = [v.strip() if type(v) is str else _text(v) for v in cells(values)]
            return separator.join([text for text in texts if text])

        return join
    index = indexes[0]

    def column(values):
        value = values[index]
        return value.strip() if isinstance(value, str) else value

    return column


def _has_reader(rule: FieldRule) -> bool:
    """Whether the field's type reads the text itself (dates; numbers with separators)."""
    separators = rule.decimal_separator or rule.thousands_separator
    return rule.target.is_date or (rule.target.is_number and bool(separators))


def _transform(rule: FieldRule, label: str, zone: dt.tzinfo) -> Callable[[object], object]:
    """Steps 2 to 5 for one non-empty or empty cell value."""
    case, values, default = rule.case, rule.values, rule.default
    if rule.target.is_date:
        parse = date_reader(rule, label, zone)
    elif _has_reader(rule):
        parse = _number_reader(rule, label)
    else:
        parse = None
    if not case and values is None:
        # Only the type's reader, which gives an empty cell its default itself.
        return parse or (lambda value: default if value is None or value == "" else value)
    fold = _FOLDS.get(case)

    def transform(value):
        if value is None or value == "":
            return default
        value = _text(value)
        if fold is not None:
            value = fold(value)
        if values is not None:
            if value not in values:
                return CellError(
                    label,
                    _("“%(value)s” is not among the mapped values (%(known)s)")
                    % {"value": value, "known": ", ".join(values) or "-"},
                )
            return values[value]
        return parse(value) if parse is not None else value

    return transform


def _text_column(rule: FieldRule, index: int, label: str, zone: dt.tzinfo) -> Cell:
    """A text field read from one column with ``lower``/``upper`` and/or ``values``, in
    one call for the usual cell (text that folds to a mapped value); anything else (an
    empty cell, a spreadsheet's number, a value the map lacks) through ``_transform``."""
    transform = _transform(rule, label, zone)
    fold, mapped = _FOLDS.get(rule.case), rule.values

    def cell(values):
        value = values[index]
        if type(value) is not str:
            return transform(value)
        text = value.strip()
        if not text:
            return transform(text)
        folded = fold(text) if fold is not None else text
        if mapped is None:
            return folded
        found = mapped.get(folded, _UNMAPPED)
        return transform(text) if found is _UNMAPPED else found

    return cell


def _cell(rule: FieldRule, indexes: list[int], label: str, zone: dt.tzinfo) -> Cell:
    """The field's value from a row's cells: one function, and for a field read from one
    column (the usual case) one call."""
    if rule.has_constant:
        constant = rule.constant
        return lambda _values: constant
    read = _reader(rule, indexes, label)
    is_folded = bool(rule.case) or rule.values is not None
    if not (is_folded or rule.default is not None or _has_reader(rule)):
        return read  # the usual case: the resource's own parser does the rest
    if rule.split_part or len(indexes) > 1:
        transform = _transform(rule, label, zone)
        return lambda values: transform(read(values))
    index = indexes[0]
    if rule.target.is_date and not is_folded:
        return date_column(rule, index, label, zone)
    if is_folded and not _has_reader(rule):
        return _text_column(rule, index, label, zone)
    transform = _transform(rule, label, zone)
    return lambda values: transform(trimmed(values[index]))


def _header_problems(mapping: Mapping, table: SourceTable) -> list:
    raw = table.raw_headers or table.headers
    problems: list = []
    seen: set[str] = set()
    for key, text in zip(table.headers, raw, strict=True):
        if key in seen and key:
            problems.append(Message.of(ERR_TWICE, column=column_shown(text)))
        seen.add(key)
    used = set()
    for name, rule in mapping.rules.items():
        for column in rule.columns:
            if header_key(column) not in seen:
                listed = columns_listed(raw)
                problems.append(
                    Message.of(ERR_NO_COLUMN, field=name, column=column, columns=listed)
                )
            used.add(header_key(column))
    left = [
        text
        for key, text in zip(table.headers, raw, strict=True)
        if key and key not in used and key != ANNOTATION_COLUMN
    ]
    if left and mapping.unmapped == "refuse":
        problems.append(Message.of(ERR_LEFT_OVER, columns=columns_listed(left)))
    return problems


def mapping_compile(mapping: Mapping, table: SourceTable, *, time_zone: str = "UTC") -> SourceTable:
    """``table`` seen through ``mapping``: the kind's own headers, one value per field.

    ``time_zone`` is the batch's, used by date fields when neither the field nor the
    mapping names one. Raises ``MappingError`` when the mapping does not fit the file."""
    problems = _header_problems(mapping, table)
    if problems:
        raise MappingError(problems)
    position = {key: i for i, key in enumerate(table.headers)}
    raw = table.raw_headers or table.headers
    cells: list[Cell] = []
    labels: dict[str, str] = {}
    for name, rule in mapping.rules.items():
        indexes = [position[header_key(c)] for c in rule.columns]
        label = " + ".join(raw[i] for i in indexes) or name
        zone = zoneinfo.ZoneInfo(rule.time_zone or mapping.time_zone or time_zone or "UTC")
        cells.append(_cell(rule, indexes, label, zone))
        labels[name] = label
    width = len(table.headers)

    def rows():
        for number, values in table.rows():
            if len(values) != width:
                ragged = CellError("", ERR_RAGGED % {"cells": len(values), "columns": width})
                yield number, [ragged] * len(cells)
            else:
                yield number, [cell(values) for cell in cells]

    return SourceTable(
        headers=list(mapping.rules),
        _rows=rows,
        encoding=table.encoding,
        first_row_number=table.first_row_number,
        raw_headers=list(mapping.rules),
        labels=labels,
    )
