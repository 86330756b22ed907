"""What a batch sends: its customers, one request's worth at a time, and their bodies."""

from collections.abc import Iterator

from django.conf import settings
from django.db.models import QuerySet

from customers.contract import MAX_CUSTOMERS_PER_REQUEST
from customers.models import StagedCustomer, StagingBatch
from customers.payload.body import customers_body


def batch_send_queryset(batch: StagingBatch) -> QuerySet[StagedCustomer]:
    """The customers a job sends for ``batch``: valid and not excluded, in pk order."""
    return StagedCustomer.objects.filter(batch=batch, is_valid=True, is_excluded=False).order_by(
        "pk"
    )


# Rows fetched per round trip while streaming a batch's pks.
STREAM_ROWS = 10_000


def _chunk_size(chunk_size: int | None) -> int:
    size = settings.MIGRATION_CHUNK_SIZE if chunk_size is None else chunk_size
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    return min(size, MAX_CUSTOMERS_PER_REQUEST)


def batch_chunks(*, batch: StagingBatch, chunk_size: int | None = None) -> Iterator[list[int]]:
    """The pks a job sends, in pk order, one request's worth at a time.

    One query, streamed (a server-side cursor on PostgreSQL), so memory holds one chunk
    whatever the size of the batch, and a million customers are read in one pass rather
    than a thousand.
    """
    size = _chunk_size(chunk_size)
    ids = batch_send_queryset(batch).values_list("pk", flat=True)
    chunk: list[int] = []
    for pk in ids.iterator(chunk_size=max(size, STREAM_ROWS)):
        chunk.append(pk)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def batch_dry_run_lines(*, batch: StagingBatch, chunk_size: int | None = None) -> Iterator[bytes]:
    """Every request body the batch would send, one per line (JSON Lines), built lazily."""
    for ids in batch_chunks(batch=batch, chunk_size=chunk_size):
        yield customers_body(ids) + b"\n"
