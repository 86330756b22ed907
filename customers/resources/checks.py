"""What a file's rows show before they are staged, judged the way validation judges them.

Validation (``customers.services.problems``) checks each staged customer's body entry with
the compiled contract checker, then looks across customers: emails repeated in the batch
(in any case) and customers another batch already sent. The import's preview asks the
same questions of a file's parsed rows, before anything is stored, with the same code and
messages: each row's entry is written by ``customers.payload.row_entry`` (as the payload
writer writes a staged row) and checked by a ``Checker`` compiled once per file; "already
sent" is ``problems.sent_elsewhere``, one query per block of rows; repeated emails are told
with ``problems.duplicate_email_message`` once the last row is read.

These problems are *flaggable* (``RowProblem.is_flaggable``): the rows can be stored, and
validation would flag them on the staged customers. The file is refused unless the
operator chose to stage it and fix or exclude those rows later (``OnProblems.FLAG``).

Memory: ``RepeatedEmails`` keeps where each distinct email of the file first appears, as
hashes (``customers.resources.seen``: 16 to 48 bytes an email, no text), and the rows of
repeated emails; it reads the first row of each repeated email back from the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from django.db.models import F, QuerySet
from import_export.fields import Field

from console.messages import Message
from customers.bulk import AnyOf
from customers.contract import Checker, FieldProblem, customer_checker
from customers.contract.serializers import (
    BalanceSerializer,
    DeviceSerializer,
    MetricsPeriodSerializer,
)
from customers.formats import CellError
from customers.models import StagedCustomer, StagingBatch
from customers.payload import row_entry, spec
from customers.resources.seen import FirstRows
from customers.services.problems import (
    ERR_ALREADY_SENT,
    duplicate_email_message,
    sent_elsewhere,
)

# The contract of one child row's entry (a customer's entry is ``customer_checker``'s).
CHILD_SERIALIZERS = {
    "balances": BalanceSerializer,
    "devices": DeviceSerializer,
    "metrics": MetricsPeriodSerializer,
}
# Each path of an entry (as a problem names it) -> the staging column it is written from.
ENTRY_COLUMNS: dict[str, dict[str, str]] = {
    "customers": {**dict(spec.CUSTOMER), "metrics.updated_at": spec.METRICS_UPDATED_AT[1]},
    "balances": dict(spec.BALANCE),
    "devices": {
        spec.DEVICE_TOKEN[0]: spec.DEVICE_TOKEN[1],
        **{f"device_info.{key}": column for key, column in spec.DEVICE_INFO},
        **dict(spec.DEVICE_DATES),
    },
    "metrics": dict(spec.METRIC),
}


def record_reader(columns: list[tuple[int, Field]], column: str) -> Callable[[list], str] | None:
    """How to read a row's id (the cell of ``column``) from its cells, for its problems."""
    found = [(index, field) for index, field in columns if field.column_name == column]
    if not found:
        return None
    index, field = found[0]

    def record_of(values: list) -> str:
        value = values[index] if index < len(values) else None
        if type(value) is CellError:
            return ""
        try:
            return field.widget.clean(value)
        except ValueError:
            return ""

    return record_of


def _staged_among(legacy_ids: list[str]) -> QuerySet:
    """Of ``legacy_ids``, those staged in any batch, as a query: what ``sent_elsewhere``
    asks about. A customer another batch sent is staged there, so none is lost; and the
    block's ids reach PostgreSQL as one array (``AnyOf``), not 5000 parameters."""
    return StagedCustomer.objects.filter(AnyOf(F("legacy_id"), legacy_ids)).values("legacy_id")


class EntryCheck:
    """The contract on the entries of one kind's rows; compiled once, for a whole file."""

    def __init__(self, kind: str, fields: Iterable[Field]):
        self.kind = kind
        if kind == "customers":
            self.checker = customer_checker(strict=True)
        else:
            self.checker = Checker(CHILD_SERIALIZERS[kind], strict=True)
        file_column = {field.attribute: field.column_name for field in fields}
        self.columns = {
            path: file_column.get(column, column) for path, column in ENTRY_COLUMNS[kind].items()
        }
        # Answers found ahead for the block being checked (``resources.ahead``): the rows
        # checked, and the problems of those that have any.
        self.ahead: tuple[frozenset[int], dict[int, list[FieldProblem]]] | None = None
        # Rows whose entry passed (services.entries: an import of only such rows keeps the
        # batch's entries known to pass).
        self.passed = 0

    def found(self, row: dict) -> list[FieldProblem]:
        """What the contract finds wrong with one parsed row's entry."""
        return self.checker.check(row_entry(self.kind, row))

    def row_check(self, row_number: int, row: dict, record: str, result) -> None:
        """Report what the contract finds wrong with one parsed row's entry."""
        ahead = self.ahead
        if ahead is not None and row_number in ahead[0]:
            found = ahead[1].get(row_number, ())
        else:
            found = self.found(row)
        if not found:
            self.passed += 1
        for problem in found:
            result.add_problem(
                row_number,
                self.columns.get(problem.field, problem.field),
                problem.untranslated,
                record=record,
                is_flaggable=True,
            )


# The legacy id and the email as written of each row asked for, by row number; how a check
# that keeps no text reads it back (``StagingResource.rows_again``).
FirstDetails = Callable[[set[int]], Mapping[int, tuple[str, str]]]


class RepeatedEmails:
    """Emails used by more than one row of a file, compared in any case as validation
    compares them; told once every row is read, each row naming the others' ids.

    Kept for every row: the row where its lower-cased email first appears, as hashes
    (``FirstRows``, 16 to 48 bytes a distinct email). A row repeating an email is kept
    with its id and email; the first row of such a group is read back from the file
    (``first_details``) when the groups are told."""

    def __init__(self, first_details: FirstDetails):
        self.first_details = first_details
        self.first_rows = FirstRows()
        # The first row of a repeated email -> (row, legacy id, email) of every later one.
        self.groups: dict[int, list[tuple[int, str, str]]] = {}

    def add(self, row_number: int, legacy_id: str, email: str) -> None:
        if not email:
            return
        first = self.first_rows.first(email.lower(), row_number)
        if first != row_number:
            self.groups.setdefault(first, []).append((row_number, legacy_id, email))

    def report(self, result) -> None:
        """One flaggable problem per row sharing an email, in the order of the rows."""
        if not self.groups:
            return
        firsts = self.first_details(set(self.groups))
        groups = [[(first, *firsts[first]), *later] for first, later in sorted(self.groups.items())]
        named = [[(legacy_id, row) for row, legacy_id, _email in group] for group in groups]
        members = sorted((member, index) for index, group in enumerate(groups) for member in group)
        for (row_number, legacy_id, email), index in members:
            result.add_problem(
                row_number,
                "email",
                duplicate_email_message(email, named[index], row_number),
                record=legacy_id,
                is_flaggable=True,
            )


class CustomerChecks:
    """What validation would flag on a file's customers: the contract on each row (flat
    files; a nested document's customers passed it when parsed), a customer another batch
    already sent, emails repeated in the file. ``finish`` once every row is checked."""

    def __init__(
        self, *, batch: StagingBatch, first_details: FirstDetails, fields: Iterable[Field] = ()
    ):
        self.batch = batch
        self.entries = EntryCheck("customers", fields) if fields else None
        self.emails = RepeatedEmails(first_details)

    def block_check(self, block: list[tuple[int, dict]], result, *, repeated: set[int]) -> None:
        """Check a block of parsed rows of a customers file; ``repeated``: the rows whose
        id an earlier row has."""
        for row_number, row in block:
            self.entries.row_check(row_number, row, row["legacy_id"], result)
        self.across_check(
            [(n, row["legacy_id"], row.get("email"), n not in repeated) for n, row in block],
            result,
        )

    def across_check(self, customers: list[tuple[int, str, str | None, bool]], result) -> None:
        """``(row, legacy id, email, whether the id is first seen here)`` of a block of
        customers: sent by another batch (one query), and their emails noted for
        ``finish`` (a repeated id counts once)."""
        sent = sent_elsewhere(self.batch, _staged_among([c[1] for c in customers]))
        for row_number, legacy_id, email, is_first in customers:
            other = sent.get(legacy_id)
            if other is None:
                if is_first:
                    self.emails.add(row_number, legacy_id, email or "")
                continue
            # Validation excludes such a customer, so its email counts for no duplicate.
            result.add_problem(
                row_number,
                "id",
                Message.of(ERR_ALREADY_SENT, batch=other[1]),
                record=legacy_id,
                is_flaggable=True,
            )

    def finish(self, result) -> None:
        self.emails.report(result)
