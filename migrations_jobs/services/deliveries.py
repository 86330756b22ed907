"""Deliveries: the console sends a customer id to a Masivo account at most once.

A chunk books its customers' deliveries when it is first claimed, inside the claim's
transaction (which holds the job's row lock): one ``INSERT ... ON CONFLICT DO NOTHING`` per
chunk, then one read of who holds each id. The unique constraint on (account, legacy id)
decides between two jobs that book the same id at once; on PostgreSQL the second insert
waits for the first transaction and then sees its row. A customer whose id another staged
customer holds is skipped (its own outcome, counted on the job, not a failure), unless an
operator asked to send it again and the id is not being sent right now.

Every way a chunk ends settles its deliveries: sent (201), released (refused, cancelled
before its request left: the row is deleted, the id free again), or uncertain (given up
after a request that may have arrived: the id stays held). A chunk of transactions settles
its customers' ``TransactionDelivery`` rows the same way (``phases`` books them).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from customers.bulk import AnyOf, table_analyze
from customers.models import Outcome, StagedCustomer
from customers.services import customers_outcome_transition, customers_resend_consume
from migrations_jobs.models import Delivery, JobChunk, MigrationJob, TransactionDelivery

DeliveryStatus = Delivery.Status
ACCOUNT_CHARS = 200


# A job renews the statistics of the deliveries table at its first chunk and every this
# many after: each claim looks its chunk's ids up there, and a planner that still sees the
# table as it was (autovacuum may be off, or behind) reads every delivery instead of the
# index, 22 ms at 100,000 deliveries against 1.7 ms, growing with every chunk.
DELIVERIES_ANALYZE_EVERY = 50


def masivo_account() -> str:
    """The Masivo account deliveries are remembered for: ``MASIVO_ACCOUNT``, else the
    migrate endpoint's base URL without credentials, query or trailing slash."""
    if settings.MASIVO_ACCOUNT:
        return settings.MASIVO_ACCOUNT[:ACCOUNT_CHARS]
    parts = urlsplit(str(settings.MASIVO_BASE_URL).strip())
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{host}{port}{parts.path.rstrip('/')}"[:ACCOUNT_CHARS]


@dataclass
class ChunkBooking:
    """What booking a chunk's deliveries decided."""

    # The customers the chunk sends, in the chunk's order.
    kept: list[int] = field(default_factory=list)
    # Skipped customers by the job that holds their id.
    skipped: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    # Customers whose delivery was taken over by an operator's "send again".
    taken_over: list[int] = field(default_factory=list)

    @property
    def skipped_count(self) -> int:
        return sum(len(ids) for ids in self.skipped.values())


def _holder(delivery: Delivery) -> tuple[int, int, int, str]:
    return delivery.pk, delivery.customer_id, delivery.job_id, delivery.status


def _decide(
    *, pk: int, resend: bool, holder: tuple[int, int, int, str], booking: ChunkBooking
) -> int | None:
    """Whether the chunk keeps customer ``pk`` given who holds its id (``holder``: the
    delivery's pk, staged customer, job and status). Returns the delivery to take over."""
    delivery_pk, customer_pk, job_pk, status = holder
    if customer_pk == pk and status != DeliveryStatus.SENT:
        booking.kept.append(pk)  # booked now, or held by this customer's earlier chunk
        return None
    if resend and status != DeliveryStatus.BOOKED:
        return delivery_pk
    booking.skipped[job_pk].append(pk)
    return None


def chunk_book(*, job: MigrationJob, chunk: JobChunk, now: dt.datetime) -> ChunkBooking:
    """Take the deliveries of the chunk's customers, inside the caller's transaction (the
    claim's, holding the job's row lock); record the skipped ones and shrink the chunk to
    the customers it keeps. The chunk's own status is the caller's to change."""
    plan = _BookingPlan(job=job, chunk=chunk, now=now)
    rows = plan.customers()
    plan.book([pk for pk, _legacy_id, _resend in rows])
    if chunk.sequence % DELIVERIES_ANALYZE_EVERY == 1:
        transaction.on_commit(functools.partial(table_analyze, model=Delivery))
    holders = plan.holders([legacy_id for _pk, legacy_id, _resend in rows])
    booking = ChunkBooking()
    for pk, legacy_id, resend in rows:
        if legacy_id not in holders:
            # Released by another transaction between our insert and our read.
            holders[legacy_id] = plan.hold_again(pk=pk, legacy_id=legacy_id)
        take = _decide(pk=pk, resend=resend, holder=holders[legacy_id], booking=booking)
        if take is None:
            continue
        if plan.take_over(delivery_pk=take, customer_pk=pk):
            booking.taken_over.append(pk)
            booking.kept.append(pk)
        else:
            booking.skipped[holders[legacy_id][2]].append(pk)
    booking.kept.sort(key=plan.order.__getitem__)
    plan.point_at_chunk(booking.kept)
    customers_resend_consume(customer_ids=booking.taken_over)
    _record_skipped(job=job, chunk=chunk, booking=booking, now=now)
    return booking


def _book_sql(among: str) -> str:
    """One ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` booking the staged customers
    whose id is ``among`` (an SQL condition on it): no model object per customer, and the
    unique constraint decides between two jobs booking an id at once. Parameters: the
    account, job, chunk, status, booking time, then ``among``'s."""
    quote = connection.ops.quote_name

    def column(model, name: str) -> str:
        return quote(model._meta.get_field(name).column)

    written = ("account", "legacy_id", "customer", "job", "chunk", "status", "booked_at")
    return (
        f"INSERT INTO {quote(Delivery._meta.db_table)} "  # noqa: S608 - names, not input
        f"({', '.join(column(Delivery, name) for name in written)}, "
        f"{column(Delivery, 'times_sent')}) "
        f"SELECT %s, {column(StagedCustomer, 'legacy_id')}, {column(StagedCustomer, 'id')}, "
        f"%s, %s, %s, %s, 0 FROM {quote(StagedCustomer._meta.db_table)} "
        f"WHERE {column(StagedCustomer, 'id')} {among} "
        f"ON CONFLICT ({column(Delivery, 'account')}, {column(Delivery, 'legacy_id')}) DO NOTHING"
    )


@dataclass
class _BookingPlan:
    """The queries of one chunk's booking, for ``chunk_book``."""

    job: MigrationJob
    chunk: JobChunk
    now: dt.datetime
    account: str = field(default_factory=masivo_account)

    @property
    def order(self) -> dict[int, int]:
        return {pk: position for position, pk in enumerate(self.chunk.customer_ids)}

    def customers(self) -> list[tuple[int, str, bool]]:
        """``(pk, legacy id, send again)`` of the chunk's customers, in the chunk's order."""
        order = self.order
        rows = StagedCustomer.objects.filter(AnyOf(F("pk"), self.chunk.customer_ids))
        return sorted(rows.values_list("pk", "legacy_id", "resend"), key=lambda row: order[row[0]])

    def book(self, customer_ids: list[int]) -> None:
        """A booked delivery for each of these staged customers whose id the account has
        no delivery for, written by the database from the staged rows (``_BOOK_SQL``)."""
        if not customer_ids:
            return
        if connection.vendor == "postgresql":
            among, ids = "= ANY(%s)", [list(customer_ids)]
        else:
            among, ids = f"IN ({', '.join(['%s'] * len(customer_ids))})", list(customer_ids)
        booked_at = connection.ops.adapt_datetimefield_value(self.now)
        with connection.cursor() as cursor:
            cursor.execute(
                _book_sql(among),
                [self.account, self.job.pk, self.chunk.pk, DeliveryStatus.BOOKED, booked_at, *ids],
            )

    def holders(self, legacy_ids: list[str]) -> dict[str, tuple[int, int, int, str]]:
        """Who holds each id now: the delivery's pk, staged customer, job and status."""
        rows = Delivery.objects.filter(AnyOf(F("legacy_id"), legacy_ids), account=self.account)
        return {
            legacy_id: (delivery_pk, customer_pk, job_pk, status)
            for legacy_id, delivery_pk, customer_pk, job_pk, status in rows.values_list(
                "legacy_id", "pk", "customer_id", "job_id", "status"
            )
        }

    def hold_again(self, *, pk: int, legacy_id: str) -> tuple[int, int, int, str]:
        fresh = self.delivery(pk=pk, legacy_id=legacy_id)
        defaults = {
            name: getattr(fresh, name)
            for name in ("customer_id", "job_id", "chunk_id", "status", "booked_at")
        }
        found, _created = Delivery.objects.get_or_create(
            account=self.account, legacy_id=legacy_id, defaults=defaults
        )
        return _holder(found)

    def take_over(self, *, delivery_pk: int, customer_pk: int) -> bool:
        """An operator's send again: guarded, a job that booked the id meanwhile keeps it."""
        return bool(
            Delivery.objects.filter(pk=delivery_pk)
            .exclude(status=DeliveryStatus.BOOKED)
            .update(customer_id=customer_pk, status=DeliveryStatus.BOOKED, booked_at=self.now)
        )

    def point_at_chunk(self, kept: list[int]) -> None:
        """The kept customers' deliveries belong to this chunk now (a retried or split
        chunk's customers were booked by an earlier one)."""
        Delivery.objects.filter(AnyOf(F("customer_id"), kept), account=self.account).exclude(
            chunk_id=self.chunk.pk, job_id=self.job.pk, status=DeliveryStatus.BOOKED
        ).update(chunk_id=self.chunk.pk, job_id=self.job.pk, status=DeliveryStatus.BOOKED)


def _record_skipped(
    *, job: MigrationJob, chunk: JobChunk, booking: ChunkBooking, now: dt.datetime
) -> None:
    skipped = booking.skipped_count
    JobChunk.objects.filter(pk=chunk.pk).update(
        customer_ids=booking.kept,
        customer_count=len(booking.kept),
        skipped_count=F("skipped_count") + skipped,
        booked_at=now,
    )
    chunk.customer_ids, chunk.customer_count = booking.kept, len(booking.kept)
    if not skipped:
        return
    for other_job, ids in booking.skipped.items():
        customers_outcome_transition(
            customer_ids=ids,
            to=Outcome.SKIPPED,
            job_id=job.pk,
            chunk_id=chunk.pk,
            at=now,
            other_job_id=other_job,
        )
    MigrationJob.objects.filter(pk=job.pk).update(
        skipped_customers=F("skipped_customers") + skipped
    )


def deliveries_sent(*, chunk_ids: list[int], now: dt.datetime) -> None:
    """The chunks' 201 is in: their customers' ids (or transactions) are sent."""
    Delivery.objects.filter(chunk_id__in=chunk_ids).update(
        status=DeliveryStatus.SENT, sent_at=now, times_sent=F("times_sent") + 1
    )
    TransactionDelivery.objects.filter(chunk_id__in=chunk_ids).update(
        status=DeliveryStatus.SENT, sent_at=now
    )


def deliveries_release(*, chunk_ids: list[int], may_have_arrived: bool) -> None:
    """The chunks ended without a 201: free their customers' ids, unless a request of the
    chunks may have reached Masivo (they then stay held, as uncertain)."""
    if not chunk_ids:
        return
    for model in (Delivery, TransactionDelivery):
        held = model.objects.filter(chunk_id__in=chunk_ids, status=DeliveryStatus.BOOKED)
        if may_have_arrived:
            held.update(status=DeliveryStatus.UNCERTAIN)
        else:
            held.delete()


def deliveries_move(*, from_chunk_id: int, to_chunk: JobChunk) -> None:
    """A chunk's half (after a split) takes over its customers' deliveries."""
    Delivery.objects.filter(chunk_id=from_chunk_id, customer_id__in=to_chunk.customer_ids).update(
        chunk_id=to_chunk.pk
    )
