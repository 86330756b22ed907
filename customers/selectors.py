"""Reads shaped for the admin, the API and the import."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from customers.models import CustomerProblem, Outcome, StagedCustomer, StagingBatch

# A batch named by its id: ``7`` or ``id:7``. No batch may be named so (``batch_name_check``).
BATCH_ID_REFERENCE = re.compile(r"(?:id:)?([0-9]+)", re.ASCII | re.IGNORECASE)
# Batches whose customers are, or will be, sent by a job.
OVERLAPPING_STATUSES = (StagingBatch.Status.APPROVED, StagingBatch.Status.SUBMITTED)


def editable_batches() -> QuerySet[StagingBatch]:
    """The batches that accept imports and edits (``StagingBatch.is_editable``)."""
    return StagingBatch.objects.filter(status__in=StagingBatch.EDITABLE_STATUSES)


def batch_customer_ids(*, batch: StagingBatch) -> dict[str, int]:
    """The batch's staged customers as ``{legacy_id: pk}``, in one query."""
    return dict(batch.customers.values_list("legacy_id", "pk").iterator(chunk_size=10_000))


def batch_reference_id(reference: str) -> int | None:
    """The id ``reference`` names (``7`` or ``id:7``), or None when it is a name."""
    match = BATCH_ID_REFERENCE.fullmatch(reference.strip())
    return int(match.group(1)) if match else None


def batch_find(*, reference: str) -> StagingBatch | None:
    """The batch ``reference`` names, else None: a number (``7``, or ``id:7``) is the id
    of a batch, anything else its name. A batch's name is never a number, so neither can
    hide the other."""
    batch_id = batch_reference_id(reference)
    if batch_id is not None:
        return StagingBatch.objects.filter(pk=batch_id).first()
    return StagingBatch.objects.filter(name=reference).first()


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


@dataclass(frozen=True)
class BatchProblemCounts:
    """A batch's problems as its last validation left them."""

    # Problems that keep the batch from being validated: those of customers still to send,
    # and rows whose customer is in another batch.
    blocking: int
    # Problems of customers excluded from the migration: they will not be sent.
    excluded: int
    # Customers still to send that are invalid.
    invalid_customers: int


def batch_problem_counts(*, batch: StagingBatch) -> BatchProblemCounts:
    """How many of the batch's problems still block it, and how many belong to customers
    that are excluded (two queries)."""
    found = CustomerProblem.objects.filter(batch=batch).aggregate(
        blocking=Count("pk", filter=Q(customer__isnull=True) | Q(customer__is_excluded=False)),
        excluded=Count("pk", filter=Q(customer__is_excluded=True)),
    )
    invalid = StagedCustomer.objects.filter(batch=batch, is_excluded=False, is_valid=False)
    return BatchProblemCounts(
        blocking=found["blocking"] or 0,
        excluded=found["excluded"] or 0,
        invalid_customers=invalid.count(),
    )


# The steps a batch walks, in order: its statuses, then "sent" once Masivo has every
# customer it was to send.
PROGRESS_STEPS = ("staged", "validated", "approved", "submitted", "sent")
_STEP_OF_STATUS = {
    StagingBatch.Status.DRAFT: "staged",
    StagingBatch.Status.VALIDATED: "validated",
    StagingBatch.Status.APPROVED: "approved",
    StagingBatch.Status.SUBMITTED: "submitted",
}


def batch_progress(*, batch: StagingBatch) -> str:
    """Where ``batch`` is among ``PROGRESS_STEPS``: a submitted batch is "sent" when every
    customer it was to send (valid, included) is in Masivo, sent by it or by another batch."""
    step = _STEP_OF_STATUS[batch.status]
    if step != "submitted":
        return step
    waiting = (
        StagedCustomer.objects.filter(batch=batch, is_valid=True, is_excluded=False)
        .exclude(outcome__in=(Outcome.SENT, Outcome.SKIPPED))
        .exists()
    )
    return "submitted" if waiting else "sent"
