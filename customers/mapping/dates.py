"""Dates in a legacy export's own format, read for a mapping.

A date field with a ``date_format`` is read as ``datetime.strptime`` reads it, and in
the time zone of the field, the mapping or the batch. strptime is slow for what it does
(about 8 µs a value: it checks the locale and handles every directive each time), and a
file of a million customers has three dates a row, so the usual case is read quicker,
with the same result:

- ``quick_strptime``: a format of days, months, years, hours, minutes and seconds only
  gets strptime's own pattern (the same pieces of ``_strptime.TimeRE``, regex characters
  escaped, runs of spaces matching any) compiled once, and its numbers made into a
  datetime directly; it takes strptime's first match and raises ValueError where
  strptime would.
- ``date_column``: a date written at full width in ASCII digits (``07/11/2023
  00:31:56``, what exports write) is matched by a simpler pattern and made into the
  field's aware value in the same call that reads the cell; where that pattern matches,
  strptime's reads the same numbers (each of its pieces tries two digits first), and an
  impossible date goes to strptime to be refused. The first ``DATES_REMEMBERED`` dates
  read are remembered, as dates of birth and expiry dates repeat from row to row.

Anything else (a format with other directives, a short number, a spreadsheet's own date
cell) is read by ``date_reader`` as before. The seam: ``quick_strptime`` and
``date_column`` against ``datetime.strptime`` on the same texts
(tests/customers/test_mapping_dates.py).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from django.utils.translation import gettext as _

from customers.contract import ContractError, parse_datetime_value
from customers.formats import CellError
from customers.mapping.spec import FieldRule

Cell = Callable[[list], object]
# Dates read at full width that a date field keeps, to read a repeated one at once.
DATES_REMEMBERED = 20_000


def trimmed(value):
    """A cell with every Unicode space trimmed, if it is text."""
    return value.strip() if isinstance(value, str) else value


# The directives ``datetime.strptime`` reads with the patterns below (those of the standard
# library's ``_strptime.TimeRE``), which cover most exports' date formats.
_QUICK_DIRECTIVES = {
    "d": r"(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])",
    "m": r"(?P<m>1[0-2]|0[1-9]|[1-9])",
    "Y": r"(?P<Y>\d\d\d\d)",
    "H": r"(?P<H>2[0-3]|[0-1]\d|\d)",
    "M": r"(?P<M>[0-5]\d|\d)",
    "S": r"(?P<S>6[0-1]|[0-5]\d|\d)",
    "%": "%",
}
# The same at full width only, in ASCII digits: 07/11/2023 00:31:56.
_FULL_WIDTH = {"d": "([0-9][0-9])", "m": "([0-9][0-9])", "Y": "([0-9]{4})", "H": "([0-9][0-9])"}
_FULL_WIDTH |= {"M": _FULL_WIDTH["H"], "S": _FULL_WIDTH["H"], "%": "%"}
_REGEX_CHARS = re.compile(r"([\\.^$*+?\(\){}\[\]|])")
_SPACES = re.compile(r"\s+")


def _format_pattern(fmt: str, pieces: dict[str, str]) -> tuple[str, list[str]] | None:
    """The regular expression of a ``strptime`` format, built as strptime builds it (regex
    characters escaped, runs of spaces matching any, each directive its piece) and its
    directives in order; None when a directive is not in ``pieces`` or comes twice."""
    rest, pattern, directives = _SPACES.sub(r"\\s+", _REGEX_CHARS.sub(r"\\\1", fmt)), "", []
    while "%" in rest:
        at = rest.index("%")
        directive = rest[at + 1 : at + 2]
        if directive not in pieces or (directive in directives and directive != "%"):
            return None
        if directive != "%":
            directives.append(directive)
        pattern += rest[:at] + pieces[directive]
        rest = rest[at + 2 :]
    return pattern + rest, directives


def quick_strptime(fmt: str) -> Callable[[str], dt.datetime] | None:
    """``datetime.strptime(value, fmt)`` for a format of days, months, years, hours,
    minutes and seconds only, its pattern compiled once: strptime itself takes about
    twice as long (it checks the locale and handles every directive each time). It takes
    the first match, as strptime does, and raises ValueError where strptime would. None for
    any other format: strptime then reads it."""
    built = _format_pattern(fmt, _QUICK_DIRECTIVES)
    if built is None:
        return None
    regex = re.compile(built[0], re.IGNORECASE)

    def strptime(value: str) -> dt.datetime:
        found = regex.match(value)
        if found is None or found.end() != len(value):
            raise ValueError(value)
        parts = found.groupdict()
        return dt.datetime(  # noqa: DTZ001 - naive, as strptime's; the zone is added later
            int(parts.get("Y") or 1900),
            int(parts.get("m") or 1),
            int(parts.get("d") or 1),
            int(parts.get("H") or 0),
            int(parts.get("M") or 0),
            int(parts.get("S") or 0),
        )

    return strptime


def _full_width(fmt: str) -> tuple[re.Pattern, tuple[int, ...]] | None:
    """For a format of a day, a month and a year (then hours, minutes and seconds, in that
    order, if any): a pattern of it at full width in ASCII digits (``07/11/2023
    00:31:56``, what exports write), and where each of year, month, day, hour, minute and
    second is among its groups (a time the format lacks is the group after the last, which
    is empty: zero). Where it matches, strptime's pattern reads the same numbers (each of its
    pieces tries two digits first). None for any other format."""
    built = _format_pattern(fmt, _FULL_WIDTH)
    if built is None:
        return None
    pattern, directives = built
    times = [d for d in directives if d in "HMS"]
    dates = sorted(d for d in directives if d not in times)
    if dates != ["Y", "d", "m"] or times != list("HMS"[: len(times)]):
        return None
    at = tuple(directives.index(d) if d in directives else len(directives) for d in "YmdHMS")
    # The group after the last matches nothing: a time the format lacks.
    return re.compile(pattern + "()", re.IGNORECASE), at


def date_reader(rule: FieldRule, label: str, zone: dt.tzinfo) -> Callable[[object], object]:
    as_date = rule.target.type == "date"
    fmt, default = rule.date_format, rule.default
    strptime = (quick_strptime(fmt) if fmt else None) or (
        lambda value: dt.datetime.strptime(value, fmt)  # noqa: DTZ007 - the zone is added below
    )

    def read(value):
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            return _typed_date(value, as_date=as_date, zone=zone)
        if not fmt:
            try:
                return parse_datetime_value(value, time_zone=zone, as_date=as_date)
            except ContractError as exc:
                return CellError(label, str(exc))
        try:
            parsed = strptime(value)
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


def date_column(rule: FieldRule, index: int, label: str, zone: dt.tzinfo) -> Cell:
    """A date field read from one column in one call: a date at full width (``_full_width``)
    is read here, straight into an aware date-time, and remembered (the first
    ``DATES_REMEMBERED`` of them: dates of birth, expiry dates repeat from row to row);
    anything else by ``date_reader``."""
    read = date_reader(rule, label, zone)
    full = _full_width(rule.date_format) if rule.date_format else None
    if full is None:
        return lambda values: read(trimmed(values[index]))
    regex, (year, month, day, hour, minute, second) = full
    as_date = rule.target.type == "date"
    number = {f"{n:02d}": n for n in range(100)}
    number[""] = 0  # a time the format lacks
    known: dict[str, object] = {}

    def cell(values):
        value = values[index]
        if isinstance(value, str):
            value = value.strip()
            moment = known.get(value)
            if moment is not None:
                return moment
            found = regex.fullmatch(value)
            if found is not None:
                parts = found.groups()
                try:
                    moment = dt.datetime(
                        int(parts[year]),
                        number[parts[month]],
                        number[parts[day]],
                        number[parts[hour]],
                        number[parts[minute]],
                        number[parts[second]],
                        tzinfo=zone,
                    )
                except ValueError:
                    return read(value)  # an impossible date: strptime says so
                if as_date:
                    moment = moment.date()
                if len(known) < DATES_REMEMBERED:
                    known[value] = moment
                return moment
        return read(value)

    return cell


def _typed_date(value, *, as_date: bool, zone: dt.tzinfo):
    """A cell that is not text: a spreadsheet's own date (or date-time) cell, or a value
    left for the resource's parser to refuse."""
    if isinstance(value, dt.datetime):
        moment = (value + dt.timedelta(microseconds=500_000)).replace(microsecond=0)
        return moment.date() if as_date else moment.replace(tzinfo=zone)
    if isinstance(value, dt.date):
        return value if as_date else dt.datetime.combine(value, dt.time(), zone)
    return value
