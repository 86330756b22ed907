"""Reads shaped for the admin, the API and the import."""

from __future__ import annotations

from customers.models import StagingBatch


def batch_customer_ids(*, batch: StagingBatch) -> dict[str, int]:
    """The batch's staged customers as ``{legacy_id: pk}``, in one query."""
    return dict(batch.customers.values_list("legacy_id", "pk").iterator(chunk_size=10_000))


def batch_find(*, reference: str) -> StagingBatch | None:
    """The batch named ``reference``, else the one whose id it is, else None."""
    batch = StagingBatch.objects.filter(name=reference).first()
    if batch is None and reference.isdigit():
        batch = StagingBatch.objects.filter(pk=int(reference)).first()
    return batch
