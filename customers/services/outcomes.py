"""Writes to a staged customer's outcome in Masivo: the one guarded transition.

The jobs app decides what an answer means; it records it on the customers through
``customers_outcome_transition``, never by writing the columns itself. The diagram is
``customers.models.Outcome``'s, the map ``OUTCOME_TRANSITIONS``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence

from django.db.models import F
from django.utils import timezone

from console.states import rows_transition
from customers.bulk import AnyOf
from customers.models import (
    OUTCOME_TRANSITIONS,
    Outcome,
    StagedCustomer,
    StagedEvent,
    StagedTransaction,
)

# Ids per UPDATE: a chunk's worth, whatever the caller passes.
IDS_PER_UPDATE = 1000
# What an outcome's error keeps of a longer text.
ERROR_CHARS = 2000


def _slices(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), IDS_PER_UPDATE):
        yield ids[start : start + IDS_PER_UPDATE]


def customers_outcome_transition(
    *,
    customer_ids: Iterable[int],
    to: str,
    job_id: int | None = None,
    chunk_id: int | None = None,
    at: dt.datetime | None = None,
    error: str = "",
    maybe_twice: bool = False,
    other_job_id: int | None = None,
) -> int:
    """Move the given customers whose outcome allows it to ``to``, in conditional UPDATEs
    that also record the job, the chunk, the time and what went wrong. Back to
    ``not_sent`` (a retry, a send again) clears all of that. Returns how many moved."""
    if to == Outcome.NOT_SENT:
        fields: dict = {
            "outcome_at": None,
            "outcome_error": "",
            "outcome_job_id": None,
            "outcome_chunk_id": None,
            "outcome_maybe_twice": False,
            "outcome_other_job_id": None,
        }
    else:
        fields = {
            "outcome_at": at or timezone.now(),
            "outcome_error": error[:ERROR_CHARS],
            "outcome_job_id": job_id,
            "outcome_chunk_id": chunk_id,
            "outcome_maybe_twice": maybe_twice,
            "outcome_other_job_id": other_job_id,
        }
    return sum(
        rows_transition(
            StagedCustomer.objects.filter(AnyOf(F("pk"), part)),
            transitions=OUTCOME_TRANSITIONS,
            to=to,
            field="outcome",
            **fields,
        )
        for part in _slices(list(customer_ids))
    )


def customers_resend_consume(*, customer_ids: Iterable[int]) -> int:
    """Clear "send again" on customers whose delivery a chunk has just taken over."""
    moved = 0
    for part in _slices(list(customer_ids)):
        moved += StagedCustomer.objects.filter(pk__in=part, resend=True).update(resend=False)
    return moved


def customers_resend_mark(*, customer_ids: Iterable[int]) -> int:
    """Mark customers to be sent again (their job takes their deliveries over); the
    decision itself is recorded by the jobs app's send again."""
    moved = 0
    for part in _slices(list(customer_ids)):
        moved += StagedCustomer.objects.filter(pk__in=part, resend=False).update(resend=True)
    return moved


def history_rows_sent(*, kind: str, row_ids: Sequence[int], at: dt.datetime) -> int:
    """Record that Masivo accepted the request carrying the staged history rows
    ``row_ids`` of ``kind`` (``transactions`` or ``events``): what the reconciliation
    counts as sent. Returns how many rows it marked."""
    model = {"transactions": StagedTransaction, "events": StagedEvent}[kind]
    ids = list(row_ids)
    return sum(
        model.objects.filter(pk__in=part, sent_at__isnull=True).update(sent_at=at)
        for part in _slices(ids)
    )
