"""Reads shaped for the admin, the API and the import."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, QuerySet

from customers.models import StagedCustomer, StagingBatch

# Batches whose customers are, or will be, sent by a job.
OVERLAPPING_STATUSES = (StagingBatch.Status.APPROVED, StagingBatch.Status.SUBMITTED)


def editable_batches() -> QuerySet[StagingBatch]:
    """The batches that accept imports and edits (``StagingBatch.is_editable``)."""
    return StagingBatch.objects.filter(status__in=StagingBatch.EDITABLE_STATUSES)


def batch_customer_ids(*, batch: StagingBatch) -> dict[str, int]:
    """The batch's staged customers as ``{legacy_id: pk}``, in one query."""
    return dict(batch.customers.values_list("legacy_id", "pk").iterator(chunk_size=10_000))


def batch_find(*, reference: str) -> StagingBatch | None:
    """The batch named ``reference``, else the one whose id it is, else None."""
    batch = StagingBatch.objects.filter(name=reference).first()
    if batch is None and reference.isdigit():
        batch = StagingBatch.objects.filter(pk=int(reference)).first()
    return batch


@dataclass(frozen=True)
class BatchOverlap:
    """Another batch, approved or submitted, that holds customers this batch would send."""

    batch_id: int
    name: str
    status: str
    customers: int


def batch_overlaps(*, batch: StagingBatch) -> list[BatchOverlap]:
    """The other batches, approved or submitted, whose customers to send share a legacy id
    with the customers ``batch`` would send, with how many they share.

    Nothing is refused for it: the console sends a customer id once, so whichever job
    books such a customer first sends it, and the other job skips it (unless an operator
    asked to send it again).
    """
    mine = StagedCustomer.objects.filter(batch=batch, is_valid=True, is_excluded=False)
    rows = (
        StagedCustomer.objects.filter(
            legacy_id__in=mine.values("legacy_id"),
            batch__status__in=OVERLAPPING_STATUSES,
            is_valid=True,
            is_excluded=False,
        )
        .exclude(batch=batch)
        .values("batch_id", "batch__name", "batch__status")
        .annotate(n=Count("pk"))
        .order_by("batch_id")
    )
    return [
        BatchOverlap(
            batch_id=row["batch_id"],
            name=row["batch__name"],
            status=row["batch__status"],
            customers=row["n"],
        )
        for row in rows
    ]
