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
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers.contract import ContractError, parse_datetime_value
from customers.formats import ANNOTATION_COLUMN, CellError, SourceTable, header_key
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

    def read(value):
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


def _date_reader(rule: FieldRule, label: str, zone: dt.tzinfo) -> Callable[[object], object]:
    as_date = rule.target.type == "date"
    fmt = rule.date_format

    def read(value):
        if isinstance(value, dt.datetime):  # a spreadsheet's own date cell
            moment = (value + dt.timedelta(microseconds=500_000)).replace(microsecond=0)
            return moment.date() if as_date else moment.replace(tzinfo=zone)
        if isinstance(value, dt.date):
            return value if as_date else dt.datetime.combine(value, dt.time(), zone)
        if not isinstance(value, str):
            return value
        if not fmt:
            try:
                return parse_datetime_value(value, time_zone=zone, as_date=as_date)
            except ContractError as exc:
                return CellError(label, str(exc))
        try:
            parsed = dt.datetime.strptime(value, fmt)  # noqa: DTZ007 - the zone is added below
        except ValueError:
            return CellError(
                label,
                _("“%(value)s” is not a date written as %(format)s")
                % {"value": value, "format": fmt},
            )
        if as_date:
            return parsed.date()
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)

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
        separator = rule.separator

        def join(values):
            return separator.join(t for i in indexes if (t := _text(values[i])))

        return join
    index = indexes[0]

    def column(values):
        value = values[index]
        return value.strip() if isinstance(value, str) else value

    return column


def _transform(rule: FieldRule, label: str, zone: dt.tzinfo) -> Callable[[object], object]:
    """Steps 2 to 5 for one non-empty or empty cell value."""
    case, values, default = rule.case, rule.values, rule.default
    if rule.target.is_date:
        parse = _date_reader(rule, label, zone)
    elif rule.target.is_number and (rule.decimal_separator or rule.thousands_separator):
        parse = _number_reader(rule, label)
    else:
        parse = None

    def transform(value):
        if value is None or value == "":
            return default
        if case or values is not None:
            value = _text(value)
            value = (
                value.lower() if case == "lower" else value.upper() if case == "upper" else value
            )
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


def _cell(rule: FieldRule, indexes: list[int], label: str, zone: dt.tzinfo) -> Cell:
    if rule.has_constant:
        constant = rule.constant
        return lambda _values: constant
    read = _reader(rule, indexes, label)
    plain = not (rule.case or rule.values is not None or rule.default is not None)
    if plain and not rule.target.is_date and not rule.decimal_separator + rule.thousands_separator:
        return read  # the usual case: the resource's own parser does the rest
    transform = _transform(rule, label, zone)
    return lambda values: transform(read(values))


def _header_problems(mapping: Mapping, table: SourceTable) -> list:
    raw = table.raw_headers or table.headers
    problems: list = []
    seen: set[str] = set()
    for key, text in zip(table.headers, raw, strict=True):
        if key in seen and key:
            problems.append(ERR_TWICE % {"column": text})
        seen.add(key)
    used = set()
    for name, rule in mapping.rules.items():
        for column in rule.columns:
            if header_key(column) not in seen:
                problems.append(
                    ERR_NO_COLUMN
                    % {"field": name, "column": column, "columns": ", ".join(f"“{h}”" for h in raw)}
                )
            used.add(header_key(column))
    left = [
        text
        for key, text in zip(table.headers, raw, strict=True)
        if key and key not in used and key != ANNOTATION_COLUMN
    ]
    if left and mapping.unmapped == "refuse":
        problems.append(ERR_LEFT_OVER % {"columns": ", ".join(f"“{c}”" for c in left)})
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
