"""What every staging resource shares: reading a whole file, checking every row, and
writing it all or nothing; the messages and the result it reports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import ClassVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export import resources
from import_export.fields import Field

from console.errors import error_text
from console.messages import Message
from customers import bulk
from customers.contract import format_datetime
from customers.contract.revision import contract_revision
from customers.formats import (
    ANNOTATION_COLUMN,
    CellError,
    FileReadError,
    NestedDocument,
    SourceTable,
    column_shown,
    columns_listed,
)
from customers.models import (
    OnProblems,
    StagingBatch,
)
from customers.resources.ahead import RowChecksAhead
from customers.resources.checks import EntryCheck, record_reader
from customers.resources.results import (  # noqa: F401 - importable here too
    RowProblem,
    StagingResult,
)
from customers.services.batches import (
    BatchStateError,
    batch_add_counts,
    batch_lock_for_import,
)
from customers.services.entries import entries_record, import_entries_known
from customers.widgets import (
    DateTimeWidget,
)

ERR_UNKNOWN_COLUMNS = gettext_lazy(
    "Unknown column(s) %(columns)s. The columns of a %(kind)s file are: %(expected)s."
)
ERR_MISSING_COLUMNS = gettext_lazy("Required column(s) %(columns)s are missing.")
ERR_DUPLICATE_COLUMN = gettext_lazy("Column “%(column)s” appears more than once.")
ERR_NO_ROWS = gettext_lazy("The file has a header but no rows.")
ERR_RAGGED = gettext_lazy("has %(cells)s cells but the header has %(columns)s")
ERR_UNKNOWN_CUSTOMER = gettext_lazy(
    "no customer with id “%(value)s” is staged in batch “%(batch)s”; import the customers "
    "file first"
)
ERR_DUPLICATE_IN_FILE = gettext_lazy(
    "“%(value)s” appears again in this file (first at row %(first)s)"
)
ERR_ALREADY_STAGED = gettext_lazy("a customer with id “%(value)s” is already staged in this batch")
ERR_PERIOD_STAGED = gettext_lazy(
    "customer “%(customer)s” already has “%(period)s” metrics staged in this batch"
)
ERR_NESTED_EXPECTED = gettext_lazy(
    'This file is shaped like a request body ({"customers": [...]}): choose the kind “nested”.'
)
ERR_FLAT_EXPECTED = gettext_lazy(
    'A nested import takes one JSON document shaped like the request body: {"customers": [...]}.'
)
ERR_CONCURRENT_IMPORT = gettext_lazy(
    "Another import changed this batch at the same time; try again."
)

# Rows are written in blocks of this many inside the import's transaction.
WRITE_BLOCK = 5000

# Rows read back from the file by number, parsed: {row number: {attribute: value}}.
RowsAgain = Callable[[set[int]], dict[int, dict]]


def _shown(value) -> str:
    """A cell as the preview shows it: a mapping's date-time as it will be sent (UTC),
    its date as a date, a cell it could not read as blank."""
    if value is None or type(value) is CellError:
        return ""
    if isinstance(value, dt.datetime):
        return format_datetime(value) if value.tzinfo else str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


class Rollback(Exception):
    """Raised inside the import's transaction to undo everything written so far."""


class StagingResource(resources.ModelResource):
    """Base of every staging resource; see the module docstring for how it imports."""

    kind: ClassVar[str] = ""
    required_columns: ClassVar[tuple[str, ...]] = ()
    # The column naming a row's customer (its id, or a child's ``customer_id``).
    record_column: ClassVar[str] = ""
    # Whether the staged rows keep their number in the file (``source_row``).
    keeps_row_number: ClassVar[bool] = False
    # Whether the rows are part of a customer's entry (history rows are not).
    writes_entries: ClassVar[bool] = True

    # How often (in rows) a long import reports its progress.
    PROGRESS_EVERY = 5000

    def __init__(
        self,
        batch: StagingBatch | None = None,
        user=None,
        progress=None,
        on_problems: str = OnProblems.REFUSE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if on_problems not in OnProblems.values:
            raise ValueError(f"on_problems: {on_problems!r} is not one of {OnProblems.values}")
        self.batch = batch
        self.user = user
        self.on_problems = on_problems
        # Called with the number of rows read so far, for progress bars.
        self.progress = progress
        if batch is not None:
            for field in self.fields.values():
                if isinstance(field.widget, DateTimeWidget):
                    field.widget = DateTimeWidget(
                        time_zone=batch.time_zone, as_date=field.widget.as_date
                    )

    @classmethod
    def get_display_name(cls) -> str:
        return str(cls._meta.name)

    @classmethod
    def column_names(cls) -> list[str]:
        return [f.column_name for f in cls.fields.values()]

    # --- the import itself ----------------------------------------------------------------

    def import_data(self, dataset, dry_run: bool = False, **kwargs) -> StagingResult:  # noqa: ARG002
        result = StagingResult(
            kind=self.kind, file_name=kwargs.get("file_name") or "", batch=self.batch
        )
        result.on_problems = self.on_problems
        if self.batch is None:  # pragma: no cover - the admin form always supplies one
            raise ValueError("a staging resource needs a batch")
        if isinstance(dataset, NestedDocument):
            result.add_problem(None, "", ERR_NESTED_EXPECTED)
            return result
        result.encoding = dataset.encoding
        result.labels = dataset.labels
        columns = self._map_columns(dataset.headers, result)
        result.record_of = record_reader(columns, self.record_column)
        if result.has_errors():
            return result
        result.sample_headers = list(dataset.headers)
        try:
            if dry_run:
                self._check(dataset, columns, result)
                return result
            with transaction.atomic():
                batch = batch_lock_for_import(batch=self.batch, user=self.user)
                revision = contract_revision()
                known = import_entries_known(batch, revision)
                passed = self._write(dataset, columns, result, batch)
                if result.has_errors():
                    raise Rollback
                batch_add_counts(batch=batch, counts=result.staged)
                entries_record(batch=batch, revision=revision if known and passed else None)
                bulk.tables_analyze_after_commit(written={self._meta.model: result.staged_total})
        except Rollback:
            result.staged = {}
        except BatchStateError as exc:
            result.add_problem(None, "", error_text(exc))
        except FileReadError as exc:
            # Rows are read lazily: the file may turn out unreadable halfway (an unclosed
            # quote, a broken sheet). Whatever was written is rolled back with it.
            result.add_problem(exc.row, "", exc)
            result.staged = {}
        return result

    def _map_columns(self, headers: list[str], result: StagingResult) -> list[tuple[int, Field]]:
        by_column = {field.column_name: field for field in self.fields.values()}
        unknown = [
            h or _("(blank)") for h in headers if h not in by_column and h != ANNOTATION_COLUMN
        ]
        if unknown:
            result.add_problem(
                None,
                "",
                Message.of(
                    ERR_UNKNOWN_COLUMNS,
                    columns=columns_listed(unknown),
                    kind=self.kind,
                    expected=", ".join(by_column),
                ),
            )
        seen = set()
        for header in headers:
            if header in seen:
                result.add_problem(
                    None, header, Message.of(ERR_DUPLICATE_COLUMN, column=column_shown(header))
                )
            seen.add(header)
        missing = [c for c in self.required_columns if c not in headers]
        if missing:
            listed = ", ".join(f"“{c}”" for c in missing)
            result.add_problem(None, "", Message.of(ERR_MISSING_COLUMNS, columns=listed))
        return [(i, by_column[h]) for i, h in enumerate(headers) if h in by_column]

    def _parsed_rows(
        self, dataset: SourceTable, columns: list[tuple[int, Field]], result: StagingResult
    ) -> Iterator[tuple[int, dict]]:
        """Yield ``(row_number, {attribute: value})`` for every row that parses cleanly."""
        width = len(dataset.headers)
        preview_rows = settings.MIGRATION_IMPORT_PREVIEW_ROWS
        for row_number, values in dataset.rows():
            result.row_count += 1
            result.reading = (row_number, values)
            if self.progress is not None and result.row_count % self.PROGRESS_EVERY == 0:
                self.progress(result.row_count)
            if len(values) != width:
                result.add_problem(
                    row_number, "", Message.of(ERR_RAGGED, cells=len(values), columns=width)
                )
                continue
            parsed = {}
            ok = True
            mapping_errors: set[CellError] = set()
            for index, field in columns:
                value = values[index]
                if type(value) is CellError:  # a mapping could not read the cell
                    if value not in mapping_errors:
                        mapping_errors.add(value)
                        result.add_problem(row_number, value.column, value.message)
                    ok = False
                    continue
                try:
                    parsed[field.attribute] = field.widget.clean(value)
                except ValueError as exc:
                    result.add_problem(row_number, field.column_name, exc)
                    ok = False
            if len(result.sample_rows) < preview_rows:
                result.sample_rows.append([_shown(v) for v in values])
            if ok:
                yield row_number, parsed
        if result.row_count == 0:
            result.add_problem(None, "", ERR_NO_ROWS)

    def _blocks(self, rows: Iterator[tuple[int, dict]]) -> Iterator[list[tuple[int, dict]]]:
        block: list[tuple[int, dict]] = []
        for item in rows:
            block.append(item)
            if len(block) >= WRITE_BLOCK:
                yield block
                block = []
        if block:
            yield block

    def _rows_again(self, dataset: SourceTable, columns: list[tuple[int, Field]]) -> RowsAgain:
        """How a check that keeps no text reads chosen rows back: read from the file again
        and parsed, by row number. Only rows that parsed cleanly the first time are asked
        for; the reading stops after the last of them."""

        def rows_again(wanted: set[int]) -> dict[int, dict]:
            found: dict[int, dict] = {}
            last = max(wanted, default=0)
            for row_number, values in dataset.rows():
                if row_number > last:
                    break
                if row_number in wanted:
                    found[row_number] = {
                        field.attribute: field.widget.clean(values[index])
                        for index, field in columns
                    }
            return found

        return rows_again

    def _check(self, dataset, columns, result: StagingResult) -> None:
        """Parse and check every row; count what would be staged."""
        context = self.prepare(result, self._rows_again(dataset, columns))
        with self._checked_ahead(dataset, columns, context) as ahead:
            for block in self._blocks(self._parsed_rows(dataset, columns, result)):
                if ahead is not None:
                    ahead.prepare(block)
                self.check_block(block, context, result)
        self.finish(context, result)
        result.problems_sort()
        if not result.has_errors():
            result.staged = {self.kind: result.row_count}

    def _write(self, dataset, columns, result: StagingResult, batch: StagingBatch) -> bool:
        """Check and write every row; returns whether each row written is known to have
        passed the contract's check of its entry (``services.entries``)."""
        context = self.prepare(result, self._rows_again(dataset, columns))
        model = self._meta.model
        written = 0
        with self._checked_ahead(dataset, columns, context) as ahead:
            for block in self._blocks(self._parsed_rows(dataset, columns, result)):
                if ahead is not None:
                    ahead.prepare(block)
                self.check_block(block, context, result)
                if result.has_errors():
                    continue  # keep reading to report every problem; nothing more is written
                rows = [self.build(row, batch, context) for _row_number, row in block]
                if self.keeps_row_number:
                    for (row_number, _parsed), row in zip(block, rows, strict=True):
                        row["source_row"] = row_number
                try:
                    with transaction.atomic():
                        bulk.rows_insert(model=model, rows=rows)
                except IntegrityError:
                    result.add_problem(None, "", ERR_CONCURRENT_IMPORT)
                    raise Rollback from None
                written += len(rows)
        self.finish(context, result)
        result.problems_sort()
        result.staged = {self.kind: written}
        if not self.writes_entries:
            return True
        entries = self.entry_check(context)
        return entries is not None and entries.passed == written

    # --- what each kind provides ------------------------------------------------------------

    def _checked_ahead(self, dataset, columns, context: dict):
        """The rows' contract checks run ahead in a second process, for a large file
        (``resources.ahead``); a context giving None otherwise."""
        return RowChecksAhead.running(
            resource=self, dataset=dataset, columns=columns, entries=self.entry_check(context)
        )

    def prepare(self, result: StagingResult, rows_again: RowsAgain) -> dict:
        """What the checks of every block need (``rows_again``: to read rows back)."""
        return {}

    def entry_check(self, context: dict) -> EntryCheck | None:
        """The contract's check of each row's entry, among the checks ``prepare`` made."""
        return None

    def check_block(
        self, block: list[tuple[int, dict]], context: dict, result: StagingResult
    ) -> None:
        """Cross-row checks of a block of parsed rows; may resolve references in place."""

    def finish(self, context: dict, result: StagingResult) -> None:
        """Checks that need every row read (after the last block)."""

    def build(self, row: dict, batch: StagingBatch, context: dict) -> dict:
        """The new row's values by attribute name (``customers.bulk.rows_insert``)."""
        row["batch_id"] = batch.pk
        return row
