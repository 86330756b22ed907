"""The one shape of every state machine's transition (batch, upload, job, chunk, customer
outcome): the model's ``TRANSITIONS`` map says which statuses may move to which, and a
conditional UPDATE moves only rows whose status is an allowed source."""

from __future__ import annotations

from collections.abc import Mapping

from django.db.models import QuerySet


def sources_of(
    transitions: Mapping[str, tuple[str, ...]], to: str, expected: tuple[str, ...] | None = None
) -> tuple[str, ...]:
    """The statuses that may move to ``to`` (only those among ``expected``, if given)."""
    sources = tuple(status for status, targets in transitions.items() if to in targets)
    if expected is not None:
        sources = tuple(status for status in sources if status in expected)
    return sources


def rows_transition(
    rows: QuerySet,
    *,
    transitions: Mapping[str, tuple[str, ...]],
    to: str,
    expected: tuple[str, ...] | None = None,
    field: str = "status",
    **fields,
) -> int:
    """Move the rows of ``rows`` whose ``field`` allows it to ``to``, in one conditional
    UPDATE that also writes ``fields``; ``rows`` carries any further guard. Returns how
    many moved."""
    allowed = sources_of(transitions, to, expected)
    return rows.filter(**{f"{field}__in": allowed}).update(**{field: to}, **fields)
