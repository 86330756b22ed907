"""The one CSV writer of every download: streamed, and formula-safe (a spreadsheet shows
every cell as text and never runs one as a formula)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator

# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# A plain number (``-27``, ``-0.5``) is a value to a spreadsheet, never a formula; one with
# leading zeros (``-0027``) is text to keep as written.
PLAIN_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")


def spreadsheet_safe(value) -> str:
    """``value`` as CSV cell text a spreadsheet shows as text, never runs as a formula (a
    plain number, negative too, stays a number)."""
    text = "" if value is None else str(value)
    if PLAIN_NUMBER.fullmatch(text):
        return text
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class _Line:
    """A file-like object for ``csv.writer`` that hands back what it is given."""

    def write(self, text: str) -> str:
        return text


def csv_lines(header: list[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """The CSV document, one line at a time, every cell made spreadsheet-safe."""
    writer = csv.writer(_Line(), lineterminator="\r\n")
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([spreadsheet_safe(cell) for cell in row])
