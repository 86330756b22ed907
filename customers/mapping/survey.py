"""What a file's columns hold, for the mapping step: a few first values, the distinct
values with their counts, and the date format and number separators the values suggest.

Only the first ``SURVEY_ROWS`` rows are read and at most ``MAX_DISTINCT`` distinct values
are counted per column, so surveying a file of millions of rows costs the same as one of
ten thousand; the preview then checks every row.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice

from customers.formats import SourceTable
from customers.mapping.suggest import DateFormatGuess, date_format_suggest

SURVEY_ROWS = 10_000
MAX_DISTINCT = 50
FIRST_VALUES = 3
TEXT_SAMPLES = 200
_COMMA_DECIMAL = re.compile(r"^-?\d{1,3}(\.\d{3})*,\d+$|^-?\d+,\d+$")
_POINT_DECIMAL_GROUPED = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")


@dataclass
class ColumnSurvey:
    header: str
    first: list[str] = field(default_factory=list)
    distinct: Counter = field(default_factory=Counter)
    more_distinct: bool = False  # more values than MAX_DISTINCT were seen
    texts: list[str] = field(default_factory=list)
    has_dates: bool = False  # spreadsheet date cells

    def date_format(self) -> DateFormatGuess:
        return date_format_suggest(self.texts)

    def separators(self) -> tuple[str, str]:
        """``(decimal, thousands)`` that read the sampled numbers ("." and "" by default)."""
        if any(_COMMA_DECIMAL.match(t) for t in self.texts):
            return ",", "." if any("." in t for t in self.texts) else ""
        if any(_POINT_DECIMAL_GROUPED.match(t) for t in self.texts):
            return ".", ","
        return ".", ""


def _shown(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value).strip()


def _record(survey: ColumnSurvey, value) -> None:
    text = _shown(value)
    if not text:
        return
    if hasattr(value, "year") and not isinstance(value, str):
        survey.has_dates = True
    if len(survey.first) < FIRST_VALUES:
        survey.first.append(text)
    if text in survey.distinct or len(survey.distinct) < MAX_DISTINCT:
        survey.distinct[text] += 1
    else:
        survey.more_distinct = True
    if isinstance(value, str) and len(survey.texts) < TEXT_SAMPLES:
        survey.texts.append(text)


def table_survey(table: SourceTable, *, rows: int = SURVEY_ROWS) -> list[ColumnSurvey]:
    """One survey per column of ``table``, in the file's order, from its first ``rows``."""
    headers = table.raw_headers or table.headers
    surveys = [ColumnSurvey(header=h) for h in headers]
    width = len(surveys)
    for _number, values in islice(table.rows(), rows):
        for survey, value in zip(surveys, values[:width], strict=False):
            _record(survey, value)
    return surveys
