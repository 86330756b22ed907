"""A mapping's date formats are read as ``datetime.strptime`` reads them, only quicker: the
same dates from the same texts, and a refusal wherever strptime refuses."""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo

import pytest

from customers.formats import CellError
from customers.mapping import mapping_parse
from customers.mapping.dates import date_column, quick_strptime

FORMATS = [
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y",
    "%Y-%m-%d",
    "%Y%m%d",
    "%d.%m.%Y  %H.%M",
    "%m%d",
    "%Y%m%d%H%M%S",
    "%d/%m/%Y %H:%S",
    "(%d)[%m]{%Y}|",
    "%%%d %m %Y",
]
# Characters a mistyped date is made of, an Arabic-Indic digit among them.
NOISE = "0123456789/:.- %\tT()[]{}|" + "\u0663"
BOGOTA = zoneinfo.ZoneInfo("America/Bogota")


def _texts(fmt: str, count: int = 400) -> list[str]:
    """Dates written in ``fmt``, some of them mistyped, and some noise."""
    draw = random.Random(fmt)
    texts = []
    for _ in range(count):
        moment = dt.datetime(  # noqa: DTZ001 - a wall-clock time, as a file writes it
            draw.randint(1, 9999), draw.randint(1, 12), draw.randint(1, 31 - 3),
            draw.randint(0, 23), draw.randint(0, 59), draw.randint(0, 59),
        )  # fmt: skip
        text = list(moment.strftime(fmt))
        for _ in range(draw.choice([0, 0, 1, 2])):
            at = draw.randrange(len(text) + 1)
            if draw.random() < 0.5 and text:
                text[min(at, len(text) - 1)] = draw.choice(NOISE)
            else:
                text.insert(at, draw.choice(NOISE))
        texts.append("".join(text))
    texts += ["".join(draw.choice(NOISE) for _ in range(draw.randint(0, 20))) for _ in range(50)]
    return texts + ["31/02/2023 10:00:00", "29/02/2024 00:00:00", "00/01/2023", "24:00", ""]


def _strptime(text: str, fmt: str):
    try:
        return dt.datetime.strptime(text, fmt)  # noqa: DTZ007 - compared as naive
    except ValueError:
        return ValueError


def _quick(text: str, fmt: str):
    try:
        return quick_strptime(fmt)(text)
    except ValueError:
        return ValueError


@pytest.mark.parametrize("fmt", FORMATS)
def test_quick_strptime_reads_what_strptime_reads_and_refuses_what_it_refuses(fmt):
    assert quick_strptime(fmt) is not None
    assert [_quick(text, fmt) for text in _texts(fmt)] == [
        _strptime(text, fmt) for text in _texts(fmt)
    ]


@pytest.mark.parametrize("fmt", ["%d/%m/%Y %I:%M %p", "%d %b %Y", "%Y-%m-%dT%H:%M:%S%z", "%d%d"])
def test_other_formats_are_left_to_strptime(fmt):
    assert quick_strptime(fmt) is None


def _date_cell(fmt: str, field: str):
    document = {
        "kind": "customers",
        "fields": {"id": "id", field: {"column": "when", "date_format": fmt}},
        "unmapped": "ignore",
    }
    rule = mapping_parse(document, kind="customers").rules[field]
    return date_column(rule, 0, "when", BOGOTA)


@pytest.mark.parametrize("fmt", ["%d/%m/%Y %H:%M:%S", "%d/%m/%Y", "%Y%m%d%H%M", "%d.%m.%Y %H"])
@pytest.mark.parametrize("field", ["registration_date", "dob"])
def test_a_date_column_gives_strptimes_date_in_the_zone(fmt, field):
    cell = _date_cell(fmt, field)
    as_date = field == "dob"

    for text in [*_texts(fmt), *_texts(fmt)[:50]]:  # a repeated date is remembered
        value = cell([f" {text} "])
        expected = _strptime(text.strip(), fmt) if text.strip() else None
        if expected is ValueError:
            assert isinstance(value, CellError), text
        elif expected is None:
            assert value is None
        else:
            assert value == (expected.date() if as_date else expected.replace(tzinfo=BOGOTA))
            assert as_date or value.tzinfo is BOGOTA
