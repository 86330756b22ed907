"""A job's phases: customers, then their transactions, then their events (CONTRACT.md,
"Order of a migration"), each in chunks within its endpoint's limits.

- ``job_history_plan`` creates a job's chunks of history with the job, from what the
  batch sends (``customers.payload.history``): the plan is frozen with the rest of the
  job, so each transaction and event is in exactly one chunk of the job. Chunks of a
  phase after the first wait (``waiting``).
- ``job_phase_open`` moves the next phase's chunks to pending once nothing of an earlier
  phase is pending, being sent or held, due ``MASIVO_HISTORY_DELAY_S`` after the earlier
  phase's last accepted request: Masivo queues what it accepts, and the history must not
  arrive before its customers.
- ``history_chunk_book`` is a chunk of history's first claim: it keeps only the rows of
  customers Masivo has (their ``Delivery`` is sent), and for transactions takes each
  customer's ``TransactionDelivery``, so a customer's transactions leave the console once
  per account. What it leaves out is counted on the job, not failed.

Everything here runs inside the caller's transaction, which holds the job's row lock.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator

from django.conf import settings
from django.db.models import F, Max, Min, Value
from django.db.models.functions import Greatest

from customers.payload.history import HISTORY_KINDS, MODELS, history_chunk_plan
from migrations_jobs.models import (
    PHASES,
    Delivery,
    Endpoint,
    JobChunk,
    MigrationJob,
    TransactionDelivery,
)
from migrations_jobs.services.base import ChunkStatus, chunks_transition
from migrations_jobs.services.deliveries import masivo_account

# Recorded on a chunk of history left with nothing to send (data, not interface text).
NOTE_NOTHING_LEFT = (
    "Nothing left to send: %(absent)d customer(s) are not in Masivo (their own request did "
    "not get through) and %(before)d had their transactions sent before."
)


def job_history_plan(
    *,
    job: MigrationJob,
    first_sequence: int,
    now: dt.datetime,
    waiting: bool,
    customer_ids: list[int] | None = None,
) -> list[JobChunk]:
    """The job's chunks of transactions, then of events (unsaved), numbered from
    ``first_sequence``. ``waiting``: an earlier phase comes first (customers).
    ``customer_ids``: only the history of those staged customers that no chunk of the
    job carries yet (see ``job_history_replan``)."""
    chunks: list[JobChunk] = []
    for kind in HISTORY_KINDS:
        status = ChunkStatus.WAITING if waiting or chunks else ChunkStatus.PENDING
        planned: set[int] = set()
        if customer_ids is not None:
            for item_ids in JobChunk.objects.filter(job=job, endpoint=kind).values_list(
                "item_ids", flat=True
            ):
                planned.update(item_ids)
        plan = history_chunk_plan(
            kind=kind, batch=job.batch, customer_ids=customer_ids, planned=planned
        )
        for row_ids, customers in plan:
            chunks.append(
                JobChunk(
                    job=job,
                    sequence=first_sequence + len(chunks),
                    endpoint=kind,
                    phase=PHASES[kind],
                    item_ids=row_ids,
                    item_count=len(row_ids),
                    customer_count=customers,
                    status=status,
                    not_before=now,
                )
            )
    return chunks


def job_history_replan(
    *, job: MigrationJob, customer_ids: list[int], first_sequence: int, now: dt.datetime
) -> list[JobChunk]:
    """Failed chunks of customers are being sent again: the history of those customers
    that the job left out (no chunk carries it: Masivo did not have them when their
    history's chunk was claimed) gets new waiting chunks, saved here, and no longer
    counts as left out. Returns the chunks."""
    chunks = job_history_plan(
        job=job, first_sequence=first_sequence, now=now, waiting=True, customer_ids=customer_ids
    )
    if not chunks:
        return []
    JobChunk.objects.bulk_create(chunks, batch_size=500)
    rows: dict[str, int] = {}
    for chunk in chunks:
        rows[chunk.endpoint] = rows.get(chunk.endpoint, 0) + chunk.item_count
    MigrationJob.objects.filter(pk=job.pk).update(
        **{
            f"skipped_{kind}": Greatest(F(f"skipped_{kind}") - count, Value(0))
            for kind, count in rows.items()
        }
    )
    return chunks


def job_phase_open(*, job_id: int, now: dt.datetime) -> float | None:
    """Open the job's next phase when nothing of an earlier one is open or held: its
    waiting chunks become pending, due ``MASIVO_HISTORY_DELAY_S`` after the last accepted
    request of an earlier phase of this job (at once when there was none). Returns the
    seconds until they are due, or None when no phase opened."""
    waiting = JobChunk.objects.filter(job_id=job_id, status=ChunkStatus.WAITING)
    phase = waiting.aggregate(phase=Min("phase"))["phase"]
    if phase is None:
        return None
    earlier = JobChunk.objects.filter(job_id=job_id, phase__lt=phase)
    blocking = (*JobChunk.OPEN_STATUSES, ChunkStatus.HELD)
    if earlier.filter(status__in=blocking).exists():
        return None
    last = earlier.filter(status=ChunkStatus.SENT).aggregate(at=Max("finished_at"))["at"]
    due = now
    if last is not None:
        due = max(now, last + dt.timedelta(seconds=settings.MASIVO_HISTORY_DELAY_S))
    if not chunks_transition(
        chunks=waiting.filter(phase=phase), to=ChunkStatus.PENDING, not_before=due
    ):
        return None
    return (due - now).total_seconds()


def _legacy_ids(chunk: JobChunk) -> list[tuple[int, str]]:
    """``(pk, customer legacy id)`` of the chunk's rows, by customer then file order."""
    return list(
        MODELS[chunk.endpoint]
        .objects.filter(pk__in=chunk.item_ids)
        .order_by("customer_legacy_id", "pk")
        .values_list("pk", "customer_legacy_id")
    )


def history_chunk_book(*, job: MigrationJob, chunk: JobChunk, now: dt.datetime) -> bool:
    """A chunk of history's first claim: keep the rows of customers Masivo has and, for
    transactions, whose ``TransactionDelivery`` this chunk takes. Shrinks the chunk to
    them and counts the rest on the job. True when anything is left to send."""
    rows = _legacy_ids(chunk)
    legacy_ids = {legacy_id for _pk, legacy_id in rows}
    account = masivo_account()
    in_masivo = set(
        Delivery.objects.filter(
            account=account, legacy_id__in=legacy_ids, status=Delivery.Status.SENT
        ).values_list("legacy_id", flat=True)
    )
    keep = in_masivo
    if chunk.endpoint == Endpoint.TRANSACTIONS:
        keep = _transactions_take(job=job, chunk=chunk, legacy_ids=in_masivo, now=now)
    kept = [pk for pk, legacy_id in rows if legacy_id in keep]
    left_out = len(rows) - len(kept)
    fields: dict = {
        "item_ids": kept,
        "item_count": len(kept),
        "customer_count": len(keep),
        "skipped_count": F("skipped_count") + len(legacy_ids) - len(keep),
        "booked_at": now,
    }
    if not kept:
        fields["last_error"] = NOTE_NOTHING_LEFT % {
            "absent": len(legacy_ids - in_masivo),
            "before": len(in_masivo - keep),
        }
    JobChunk.objects.filter(pk=chunk.pk).update(**fields)
    chunk.item_ids, chunk.item_count, chunk.customer_count = kept, len(kept), len(keep)
    if left_out:
        counter = f"skipped_{chunk.endpoint}"
        MigrationJob.objects.filter(pk=job.pk).update(**{counter: F(counter) + left_out})
    return bool(kept)


def _transactions_take(
    *, job: MigrationJob, chunk: JobChunk, legacy_ids: set[str], now: dt.datetime
) -> set[str]:
    """Take the transactions deliveries of ``legacy_ids`` for ``chunk``: those another
    chunk holds (booked, sent, or perhaps sent) stay theirs. Returns the ids taken."""
    account = masivo_account()
    TransactionDelivery.objects.bulk_create(
        [
            TransactionDelivery(
                account=account,
                legacy_id=legacy_id,
                job_id=job.pk,
                chunk_id=chunk.pk,
                status=TransactionDelivery.Status.BOOKED,
                booked_at=now,
            )
            for legacy_id in sorted(legacy_ids)
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
    return set(
        TransactionDelivery.objects.filter(
            account=account,
            legacy_id__in=legacy_ids,
            chunk_id=chunk.pk,
            status=TransactionDelivery.Status.BOOKED,
        ).values_list("legacy_id", flat=True)
    )


def history_halves(chunk: JobChunk) -> Iterator[tuple[list[int], int]]:
    """A refused chunk of history in two, by customer (a customer's rows stay together):
    each half's row pks and number of customers."""
    rows = _legacy_ids(chunk)
    customers = list(dict.fromkeys(legacy_id for _pk, legacy_id in rows))
    half = math.ceil(len(customers) / 2)
    for part in (set(customers[:half]), set(customers[half:])):
        yield [pk for pk, legacy_id in rows if legacy_id in part], len(part)


def transaction_deliveries_move(*, from_chunk_id: int, to_chunk: JobChunk) -> None:
    """A half of a split chunk of transactions takes over its customers' deliveries."""
    legacy_ids = {legacy_id for _pk, legacy_id in _legacy_ids(to_chunk)}
    TransactionDelivery.objects.filter(chunk_id=from_chunk_id, legacy_id__in=legacy_ids).update(
        chunk_id=to_chunk.pk
    )
