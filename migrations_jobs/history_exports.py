"""What became of a job's history, per customer, as a CSV download: the same file
whichever door (admin or API) asks, written by ``console.exports``.

One line per customer and kind (transactions, events) and chunk: how many rows, what
became of them (sent, failed, held for a decision, not sent yet, cancelled, left out) and
why in words. Rows no chunk of the job carries were left out when their chunk was first
claimed: Masivo did not have the customer, or another job had sent its transactions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from django.http import StreamingHttpResponse
from django.utils.translation import gettext

from console.exports import csv_lines
from customers.payload.history import HISTORY_KINDS, MODELS, history_send_queryset
from migrations_jobs.models import JobChunk, MigrationJob, TransactionDelivery
from migrations_jobs.services.deliveries import masivo_account

ChunkStatus = JobChunk.Status
HISTORY_COLUMNS = ["legacy_id", "kind", "rows", "outcome", "chunk", "attempts", "detail"]
# A chunk's status -> the outcome its rows have.
OUTCOMES = {
    ChunkStatus.SENT: "sent",
    ChunkStatus.FAILED: "failed",
    ChunkStatus.HELD: "held",
    ChunkStatus.CANCELLED: "cancelled",
    ChunkStatus.WAITING: "not_sent",
    ChunkStatus.PENDING: "not_sent",
    ChunkStatus.SENDING: "not_sent",
}
LEFT_OUT = "left_out"
ROWS_PER_QUERY = 5000


def _detail(chunk: JobChunk) -> str:
    if chunk.status == ChunkStatus.FAILED:
        return chunk.last_error
    if chunk.status == ChunkStatus.HELD:
        return gettext(
            "Outcome unknown: check Masivo, then mark the chunk arrived or send it again."
        )
    return ""


def _chunk_lines(job: MigrationJob) -> Iterator[list]:
    """The lines of the rows each chunk carries; a chunk that was split or retried is
    told through the chunks that replaced it."""
    chunks = (
        JobChunk.objects.filter(job=job, phase__gt=0, children__isnull=True)
        .exclude(status__in=(ChunkStatus.SPLIT, ChunkStatus.SKIPPED))
        .order_by("sequence")
    )
    for chunk in chunks.iterator(chunk_size=100):
        per_customer = Counter(
            MODELS[chunk.endpoint]
            .objects.filter(pk__in=chunk.item_ids)
            .values_list("customer_legacy_id", flat=True)
        )
        for legacy_id in sorted(per_customer):
            yield [
                legacy_id,
                chunk.endpoint,
                per_customer[legacy_id],
                OUTCOMES.get(chunk.status, chunk.status),
                chunk.sequence,
                chunk.attempts,
                _detail(chunk),
            ]


def _left_out(job: MigrationJob, kind: str) -> Iterator[list]:
    """The lines of the rows of ``kind`` the job was to send that no chunk carries."""
    carried: set[int] = set()
    for item_ids in JobChunk.objects.filter(job=job, endpoint=kind).values_list(
        "item_ids", flat=True
    ):
        carried.update(item_ids)
    rows = history_send_queryset(kind=kind, batch=job.batch).values_list("pk", "customer_legacy_id")
    per_customer: Counter[str] = Counter(
        legacy_id for pk, legacy_id in rows.iterator(chunk_size=ROWS_PER_QUERY) if pk not in carried
    )
    if not per_customer:
        return
    holders = {}
    if kind == "transactions":
        holders = dict(
            TransactionDelivery.objects.filter(
                account=masivo_account(), legacy_id__in=list(per_customer)
            )
            .exclude(job=job)
            .values_list("legacy_id", "job_id")
        )
    for legacy_id in sorted(per_customer):
        if legacy_id in holders:
            detail = gettext("Its transactions were sent by job #%(job)s.") % {
                "job": holders[legacy_id]
            }
        else:
            detail = gettext(
                "Masivo did not have this customer when its history was sent: its own "
                "request had not been accepted."
            )
        yield [legacy_id, kind, per_customer[legacy_id], LEFT_OUT, "", "", detail]


def job_history_rows(job: MigrationJob) -> Iterator[list]:
    """The CSV rows (``HISTORY_COLUMNS``) of what became of the job's history."""
    yield from _chunk_lines(job)
    for kind in HISTORY_KINDS:
        yield from _left_out(job, kind)


def history_csv_response(*, job: MigrationJob) -> StreamingHttpResponse:
    """The job's history outcome as CSV, streamed: the admin's and the API's download."""
    response = StreamingHttpResponse(
        csv_lines(HISTORY_COLUMNS, job_history_rows(job)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-history.csv"'
    return response
