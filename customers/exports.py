"""A batch's problems as a CSV download (the problems list's export), written by
``console.exports`` so that every cell is formula-safe; and the staged files each problem
points into, which the list shows too.

A problem names a customer and a field of the request body; the file it came from is the
batch's staged file of that field's kind (a customers file for ``email``, a balances file
for ``balance[0].amount``), or a nested file, which holds every kind. When a batch staged
several files of a kind, each is named: which of them holds the row is not recorded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from console.exports import csv_lines
from customers.models import CustomerProblem, StagingUpload
from customers.problem_files import field_kind

PROBLEM_COLUMNS = [
    "batch", "legacy_id", "name", "email", "field", "problem", "message", "file", "row",
]  # fmt: skip
# The kind of a file that holds every part of the body.
NESTED = "nested"


class StagedFileNames:
    """The names of the staged files a problem points into, read once per batch."""

    def __init__(self) -> None:
        self._by_batch: dict[int, dict[str, list[str]]] = {}

    def _batch_files(self, batch_id: int) -> dict[str, list[str]]:
        if batch_id not in self._by_batch:
            names: dict[str, list[str]] = defaultdict(list)
            uploads = (
                StagingUpload.objects.filter(batch_id=batch_id, status=StagingUpload.Status.STAGED)
                .order_by("created_at", "pk")
                .values_list("kind", "file_name")
            )
            for kind, file_name in uploads:
                names[kind].append(file_name)
            self._by_batch[batch_id] = names
        return self._by_batch[batch_id]

    def of(self, problem: CustomerProblem) -> list[str]:
        files = self._batch_files(problem.batch_id)
        return [*files.get(field_kind(problem.field), ()), *files.get(NESTED, ())]


def problem_row_number(problem: CustomerProblem) -> int | None:
    """The row of the customers file a problem is on, when it is about a column of that
    file and its customer kept its row (with the problem's customer selected)."""
    customer = problem.customer
    if customer is None or field_kind(problem.field) != "customers":
        return None
    return customer.source_row


def problem_rows(problems: Iterable[CustomerProblem]) -> Iterator[list]:
    """The CSV rows of ``problems`` (with their customer and batch selected), in
    ``PROBLEM_COLUMNS`` order, in the active language."""
    files = StagedFileNames()
    for problem in problems:
        customer = problem.customer
        yield [
            problem.batch.name,
            problem.legacy_id,
            customer.name if customer else "",
            customer.email if customer else "",
            problem.field,
            problem.get_code_display(),
            problem.get_message_display(),
            " | ".join(files.of(problem)),
            problem_row_number(problem) or "",
        ]


def problems_csv(problems: Iterable[CustomerProblem]) -> Iterator[str]:
    """The whole CSV of ``problems``, streamed."""
    return csv_lines(PROBLEM_COLUMNS, problem_rows(problems))
