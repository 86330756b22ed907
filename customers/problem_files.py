"""The batch's problems, written back into the files they came from: each staged file,
read again as it was staged (through its mapping, if it had one), with an ``errors``
column on the rows of customers that validation found problems with.

A problem belongs to a customer and a field of the body (``email``,
``balance[0].amount``, ``metrics.lifetime.spend_total``): the customers file carries the
customer's own fields, each child file the problems of its part of the body (on every row
of that customer in the file), named by the file's own column where the field has one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import PurePath

from django.db.models import Count

from customers.errorfile import error_file
from customers.formats import SourceTable
from customers.mapping import table_mapped
from customers.models import CustomerProblem, StagingBatch, StagingUpload
from customers.staging import format_for

# The body's key of each child kind; the customers file takes every other field.
BODY_KEYS = {"balances": "balance", "devices": "devices", "metrics": "metrics"}
ID_COLUMN = {
    "customers": "id",
    "balances": "customer_id",
    "devices": "customer_id",
    "metrics": "customer_id",
}


@dataclass(frozen=True)
class FileProblem:
    row: int | None
    column: str
    message: str


@dataclass(frozen=True)
class ProblemFile:
    upload: StagingUpload
    # The batch's problems in this file's part of the body (customers' fields, balances...):
    # the file's own rows carry those of its customers.
    kind_problem_count: int


def field_kind(field: str) -> str:
    """The kind of file a problem's field comes from: ``balance[0].amount`` → balances,
    ``email`` → customers."""
    head = field.split("[", 1)[0].split(".", 1)[0]
    return next((kind for kind, key in BODY_KEYS.items() if key == head), "customers")


def _leaf(field: str) -> str:
    """``balance[0].amount`` → ``amount``; ``metrics.lifetime.spend_total`` → ``spend_total``."""
    return field.rsplit(".", 1)[-1].split("[", 1)[0]


def _problems_by_customer(batch: StagingBatch, kind: str) -> dict[str, list[CustomerProblem]]:
    found: dict[str, list[CustomerProblem]] = defaultdict(list)
    for problem in CustomerProblem.objects.filter(batch=batch).only(
        "legacy_id", "field", "message", "message_template", "message_params"
    ):
        if field_kind(problem.field) == kind:
            found[problem.legacy_id].append(problem)
    return found


def batch_problem_files(*, batch: StagingBatch) -> list[ProblemFile]:
    """The batch's staged files of the kinds that problems point into (which of their rows
    carry problems shows only when a file is read: it is not counted here)."""
    counts: dict[str, int] = defaultdict(int)
    for field, n in (
        CustomerProblem.objects.filter(batch=batch).values_list("field").annotate(n=Count("pk"))
    ):
        counts[field_kind(field)] += n
    uploads = batch.uploads.filter(status=StagingUpload.Status.STAGED).exclude(file="")
    return [
        ProblemFile(upload=upload, kind_problem_count=counts[upload.kind])
        for upload in uploads.order_by("created_at", "pk")
        if upload.kind in ID_COLUMN and counts.get(upload.kind)
    ]


def _rows_with_ids(upload: StagingUpload, content: bytes) -> tuple[SourceTable, int]:
    """The file's rows as staging read them, and where each row's customer id is."""
    fmt = format_for(upload.file_name)
    table = fmt().create_dataset(content)
    mapped, _document = table_mapped(
        table=table,
        kind=upload.kind,
        document=upload.mapping_document or None,
        time_zone=upload.batch.time_zone,
    )
    return mapped, mapped.headers.index(ID_COLUMN[upload.kind])


def _id_text(value) -> str:
    """A row's customer id as staging stores it (a spreadsheet's 123.0 is ``123``)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None else str(value).strip()


def upload_problems(*, upload: StagingUpload, content: bytes) -> list[FileProblem]:
    """The batch's problems placed on the rows of ``upload``'s file, in the active
    language."""
    by_customer = _problems_by_customer(upload.batch, upload.kind)
    mapped, id_index = _rows_with_ids(upload, content)
    placed = []
    for number, values in mapped.rows():
        legacy_id = _id_text(values[id_index]) if id_index < len(values) else ""
        for problem in by_customer.get(legacy_id, ()):
            leaf = _leaf(problem.field)
            column = mapped.label(leaf) if leaf in mapped.headers else ""
            shown = problem.get_message_display()
            message = shown if column else f"{problem.field}: {shown}"
            placed.append(FileProblem(row=number, column=column, message=message))
    return placed


def upload_error_file(*, upload: StagingUpload, as_format: str) -> tuple[bytes, str, str]:
    """``upload``'s file with the batch's problems beside its rows: bytes, name, type."""
    with upload.file.open("rb") as handle:
        content = handle.read()
    problems = upload_problems(upload=upload, content=content)
    name = PurePath(upload.file_name).name
    return error_file(file_name=name, content=content, problems=problems, as_format=as_format)
