"""django-import-export resources: one per file kind, each scoped to a staging batch.

The resources declare their columns the import-export way (``Field`` with a
``column_name`` and a parsing widget), and stage a whole file at once instead of row by
row: every row is parsed and checked first, references to customers are resolved with one
query, and only a file without a single problem is written, with bulk inserts, inside one
transaction. The preview (``dry_run``) runs the same checks and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export import resources
from import_export.fields import Field
from import_export.results import Result

from customers import bulk, nested, selectors, services
from customers.formats import FileReadError, NestedDocument, SourceTable
from customers.models import (
    AMOUNT_DECIMALS,
    AMOUNT_DIGITS,
    StagedBalance,
    StagedCustomer,
    StagedDevice,
    StagedMetric,
    StagingBatch,
)
from customers.widgets import (
    ChoiceWidget,
    DateTimeWidget,
    DecimalWidget,
    JSONObjectWidget,
    NonNegativeIntegerWidget,
    PeriodWidget,
    TextWidget,
    UUIDWidget,
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
ERR_NOT_EDITABLE_BATCH = gettext_lazy(
    "Batch “%(batch)s” no longer accepts imports: it is %(status)s."
)

# Rows are written in blocks of this many inside the import's transaction.
WRITE_BLOCK = 5000


@dataclass(frozen=True)
class RowProblem:
    """One problem with a file: its row and column where it has them."""

    row: int | None
    column: str
    message: str

    def __str__(self) -> str:
        if self.row is None:
            return self.message
        if self.column:
            return _("row %(row)s, column “%(column)s”: %(message)s") % {
                "row": self.row,
                "column": self.column,
                "message": self.message,
            }
        return _("row %(row)s: %(message)s") % {"row": self.row, "message": self.message}


class StagingResult(Result):
    """What an import found: counts, every problem, and a few rows to preview."""

    def __init__(self, *, kind: str, file_name: str = "", batch: StagingBatch | None = None):
        super().__init__()
        self.kind = kind
        self.file_name = file_name or ""
        self.batch = batch
        self.encoding = ""
        self.row_count = 0
        self.staged: dict[str, int] = {}
        self.problems: list[RowProblem] = []
        self.sample_headers: list[str] = []
        self.sample_rows: list[list[str]] = []

    def add_problem(self, row: int | None, column: str, message) -> None:
        self.problems.append(RowProblem(row=row, column=column, message=str(message)))

    def has_errors(self) -> bool:
        return bool(self.problems or self.base_errors)

    def has_validation_errors(self) -> bool:
        return False

    def messages(self) -> list[str]:
        """Every problem as one line that names the file, row and column."""
        prefix = f"{self.file_name}: " if self.file_name else ""
        return [prefix + str(p) for p in self.problems]

    @property
    def problem_count(self) -> int:
        return len(self.problems)

    @property
    def staged_total(self) -> int:
        return sum(self.staged.values())


class _Rollback(Exception):
    """Raised inside the import's transaction to undo everything written so far."""


class StagingResource(resources.ModelResource):
    """Base of every staging resource; see the module docstring for how it imports."""

    kind: ClassVar[str] = ""
    required_columns: ClassVar[tuple[str, ...]] = ()

    # How often (in rows) a long import reports its progress.
    PROGRESS_EVERY = 5000

    def __init__(self, batch: StagingBatch | None = None, user=None, progress=None, **kwargs):
        super().__init__(**kwargs)
        self.batch = batch
        self.user = user
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
        if self.batch is None:  # pragma: no cover - the admin form always supplies one
            raise ValueError("a staging resource needs a batch")
        if isinstance(dataset, NestedDocument):
            result.add_problem(None, "", ERR_NESTED_EXPECTED)
            return result
        result.encoding = dataset.encoding
        columns = self._map_columns(dataset.headers, result)
        if result.has_errors():
            return result
        result.sample_headers = list(dataset.headers)
        try:
            if dry_run:
                self._check(dataset, columns, result)
                return result
            with transaction.atomic():
                batch = services.batch_lock_for_import(batch=self.batch, user=self.user)
                self._write(dataset, columns, result, batch)
                if result.has_errors():
                    raise _Rollback
                services.batch_add_counts(batch=batch, counts=result.staged)
        except _Rollback:
            result.staged = {}
        except services.BatchStateError as exc:
            result.add_problem(None, "", " ".join(exc.messages))
        except FileReadError as exc:
            # Rows are read lazily: the file may turn out unreadable halfway (an unclosed
            # quote, a broken sheet). Whatever was written is rolled back with it.
            result.add_problem(exc.row, "", str(exc))
            result.staged = {}
        return result

    def _map_columns(self, headers: list[str], result: StagingResult) -> list[tuple[int, Field]]:
        by_column = {field.column_name: field for field in self.fields.values()}
        unknown = [h or _("(blank)") for h in headers if h not in by_column]
        if unknown:
            result.add_problem(
                None,
                "",
                ERR_UNKNOWN_COLUMNS
                % {
                    "columns": ", ".join(f"“{h}”" for h in unknown),
                    "kind": self.kind,
                    "expected": ", ".join(by_column),
                },
            )
        seen = set()
        for header in headers:
            if header in seen:
                result.add_problem(None, header, ERR_DUPLICATE_COLUMN % {"column": header})
            seen.add(header)
        missing = [c for c in self.required_columns if c not in headers]
        if missing:
            result.add_problem(
                None, "", ERR_MISSING_COLUMNS % {"columns": ", ".join(f"“{c}”" for c in missing)}
            )
        return [(i, by_column[h]) for i, h in enumerate(headers) if h in by_column]

    def _parsed_rows(
        self, dataset: SourceTable, columns: list[tuple[int, Field]], result: StagingResult
    ) -> Iterator[tuple[int, dict]]:
        """Yield ``(row_number, {attribute: value})`` for every row that parses cleanly."""
        width = len(dataset.headers)
        preview_rows = settings.MIGRATION_IMPORT_PREVIEW_ROWS
        for row_number, values in dataset.rows():
            result.row_count += 1
            if self.progress is not None and result.row_count % self.PROGRESS_EVERY == 0:
                self.progress(result.row_count)
            if len(values) != width:
                result.add_problem(
                    row_number, "", ERR_RAGGED % {"cells": len(values), "columns": width}
                )
                continue
            parsed = {}
            ok = True
            for index, field in columns:
                try:
                    parsed[field.attribute] = field.widget.clean(values[index])
                except ValueError as exc:
                    result.add_problem(
                        row_number, field.column_name, exc.args[0] if exc.args else exc
                    )
                    ok = False
            if len(result.sample_rows) < preview_rows:
                result.sample_rows.append(["" if v is None else str(v) for v in values])
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

    def _check(self, dataset, columns, result: StagingResult) -> None:
        """Parse and check every row; count what would be staged."""
        context = self.prepare(result)
        for block in self._blocks(self._parsed_rows(dataset, columns, result)):
            self.check_block(block, context, result)
        if not result.has_errors():
            result.staged = {self.kind: result.row_count}

    def _write(self, dataset, columns, result: StagingResult, batch: StagingBatch) -> None:
        context = self.prepare(result)
        model = self._meta.model
        written = 0
        for block in self._blocks(self._parsed_rows(dataset, columns, result)):
            self.check_block(block, context, result)
            if result.has_errors():
                continue  # keep reading to report every problem; nothing more is written
            rows = [self.build(row, batch, context) for _row_number, row in block]
            try:
                with transaction.atomic():
                    bulk.rows_insert(model=model, rows=rows)
            except IntegrityError:
                result.add_problem(
                    None, "", _("Another import changed this batch at the same time; try again.")
                )
                raise _Rollback from None
            written += len(rows)
        result.staged = {self.kind: written}

    # --- what each kind provides ------------------------------------------------------------

    def prepare(self, result: StagingResult) -> dict:
        """Load what the checks of every block need (one query at most)."""
        return {}

    def check_block(
        self, block: list[tuple[int, dict]], context: dict, result: StagingResult
    ) -> None:
        """Cross-row checks of a block of parsed rows; may resolve references in place."""

    def build(self, row: dict, batch: StagingBatch, context: dict) -> dict:
        """The new row's values by attribute name (``customers.bulk.rows_insert``)."""
        row["batch_id"] = batch.pk
        return row


def _text(column: str, attribute: str, max_length: int, required: bool = False) -> Field:
    return Field(
        attribute=attribute,
        column_name=column,
        widget=TextWidget(max_length=max_length, required=required),
    )


def _datetime(column: str, attribute: str | None = None, as_date: bool = False) -> Field:
    return Field(
        attribute=attribute or column,
        column_name=column,
        widget=DateTimeWidget(as_date=as_date),
    )


def _decimal(column: str, required: bool = False) -> Field:
    return Field(
        attribute=column,
        column_name=column,
        widget=DecimalWidget(
            required=required, max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_DECIMALS
        ),
    )


class CustomerResource(StagingResource):
    kind = "customers"
    required_columns = ("id",)

    legacy_id = _text("id", "legacy_id", 255, required=True)
    name = _text("name", "name", 255)
    email = _text("email", "email", 254)
    gender = Field(
        attribute="gender",
        column_name="gender",
        widget=ChoiceWidget(setting="MASIVO_GENDERS", upper=True),
    )
    dob = _datetime("dob", as_date=True)
    registration_date = _datetime("registration_date")
    status = Field(
        attribute="status",
        column_name="status",
        widget=ChoiceWidget(setting="MASIVO_STATUSES", upper=True),
    )
    document_type = _text("document_type", "document_type", 64)
    document_number = _text("document_number", "document_number", 64)
    country = _text("country", "country", 64)
    metadata = Field(attribute="metadata", column_name="metadata", widget=JSONObjectWidget())
    metrics_updated_at = _datetime("metrics_updated_at")

    class Meta:
        model = StagedCustomer
        name = gettext_lazy("customers")
        fields = (
            "legacy_id", "name", "email", "gender", "dob", "registration_date", "status",
            "document_type", "document_number", "country", "metadata", "metrics_updated_at",
        )  # fmt: skip

    def prepare(self, result: StagingResult) -> dict:
        return {"first_row": {}}

    def check_block(self, block, context, result) -> None:
        first_row = context["first_row"]
        for row_number, row in block:
            legacy_id = row["legacy_id"]
            if legacy_id in first_row:
                result.add_problem(
                    row_number,
                    "id",
                    ERR_DUPLICATE_IN_FILE % {"value": legacy_id, "first": first_row[legacy_id]},
                )
            else:
                first_row[legacy_id] = row_number
        staged = set(
            StagedCustomer.objects.filter(
                batch=self.batch, legacy_id__in=[row["legacy_id"] for _n, row in block]
            ).values_list("legacy_id", flat=True)
        )
        for row_number, row in block:
            if row["legacy_id"] in staged:
                result.add_problem(
                    row_number, "id", ERR_ALREADY_STAGED % {"value": row["legacy_id"]}
                )


class ChildResource(StagingResource):
    """A file whose rows belong to a customer of the batch, named by ``customer_id``."""

    required_columns = ("customer_id",)

    def prepare(self, result: StagingResult) -> dict:
        return {"customers": selectors.batch_customer_ids(batch=self.batch)}

    def check_block(self, block, context, result) -> None:
        customers = context["customers"]
        for row_number, row in block:
            legacy_id = row.pop("customer_legacy_id")
            pk = customers.get(legacy_id)
            if pk is None:
                result.add_problem(
                    row_number,
                    "customer_id",
                    ERR_UNKNOWN_CUSTOMER % {"value": legacy_id, "batch": self.batch.name},
                )
            row["customer_id"] = pk


def _customer_ref() -> Field:
    return _text("customer_id", "customer_legacy_id", 255, required=True)


class BalanceResource(ChildResource):
    kind = "balances"
    required_columns = ("customer_id", "reward_id", "amount")

    customer = _customer_ref()
    reward_id = Field(
        attribute="reward_id", column_name="reward_id", widget=UUIDWidget(required=True)
    )
    amount = _decimal("amount", required=True)
    expiration_date = _datetime("expiration_date")
    brand_id = _text("brand_id", "brand_id", 255)
    channel_id = _text("channel_id", "channel_id", 255)
    store_id = _text("store_id", "store_id", 255)
    issued_at = _datetime("issued_at")
    funded_by = _text("funded_by", "funded_by", 255)

    class Meta:
        model = StagedBalance
        name = gettext_lazy("balances")
        fields = (
            "customer", "reward_id", "amount", "expiration_date", "brand_id", "channel_id",
            "store_id", "issued_at", "funded_by",
        )  # fmt: skip


class DeviceResource(ChildResource):
    kind = "devices"
    required_columns = ("customer_id", "device_token")

    customer = _customer_ref()
    device_token = _text("device_token", "device_token", 512, required=True)
    platform = Field(
        attribute="platform",
        column_name="platform",
        widget=ChoiceWidget(setting="MASIVO_DEVICE_PLATFORMS", upper=False),
    )
    model = _text("model", "model", 128)
    os_version = _text("os_version", "os_version", 64)
    expires_at = _datetime("expires_at")
    created_at = _datetime("created_at")

    class Meta:
        model = StagedDevice
        name = gettext_lazy("devices")
        fields = (
            "customer", "device_token", "platform", "model", "os_version", "expires_at",
            "created_at",
        )  # fmt: skip


class MetricResource(ChildResource):
    kind = "metrics"
    required_columns = ("customer_id", "period")

    customer = _customer_ref()
    period = Field(attribute="period", column_name="period", widget=PeriodWidget())
    period_from = _datetime("from", "period_from")
    period_to = _datetime("to", "period_to")
    tier_id = Field(attribute="tier_id", column_name="tier_id", widget=UUIDWidget())
    last_visit = _datetime("last_visit")
    last_session = _datetime("last_session")
    spend_total = _decimal("spend_total")
    number_of_purchases = Field(
        attribute="number_of_purchases",
        column_name="number_of_purchases",
        widget=NonNegativeIntegerWidget(),
    )

    class Meta:
        model = StagedMetric
        name = gettext_lazy("metrics")
        fields = (
            "customer", "period", "period_from", "period_to", "tier_id", "last_visit",
            "last_session", "spend_total", "number_of_purchases",
        )  # fmt: skip

    def prepare(self, result: StagingResult) -> dict:
        context = super().prepare(result)
        context["first_row"] = {}
        return context

    def check_block(self, block, context, result) -> None:
        super().check_block(block, context, result)
        first_row = context["first_row"]
        for row_number, row in block:
            key = (row["customer_id"], row["period"])
            if row["customer_id"] is None:
                continue
            if key in first_row:
                result.add_problem(
                    row_number,
                    "period",
                    ERR_DUPLICATE_IN_FILE % {"value": row["period"], "first": first_row[key]},
                )
            else:
                first_row[key] = row_number
        staged = set(
            StagedMetric.objects.filter(
                customer_id__in=[row["customer_id"] for _n, row in block if row["customer_id"]]
            ).values_list("customer_id", "period")
        )
        by_pk = {v: k for k, v in context["customers"].items()} if staged else {}
        for row_number, row in block:
            if (row["customer_id"], row["period"]) in staged:
                result.add_problem(
                    row_number,
                    "period",
                    ERR_PERIOD_STAGED
                    % {"customer": by_pk[row["customer_id"]], "period": row["period"]},
                )


class NestedResource(StagingResource):
    """One JSON document shaped like the endpoint's body: customers with their children."""

    kind = "nested"

    class Meta:
        model = StagedCustomer
        name = gettext_lazy("nested request body (JSON)")
        fields = ()

    @classmethod
    def column_names(cls) -> list[str]:
        return ['{"customers": [...]}']

    def import_data(self, dataset, dry_run: bool = False, **kwargs) -> StagingResult:  # noqa: ARG002
        result = StagingResult(
            kind=self.kind, file_name=kwargs.get("file_name") or "", batch=self.batch
        )
        if not isinstance(dataset, NestedDocument):
            result.add_problem(None, "", ERR_FLAT_EXPECTED)
            return result
        result.encoding = dataset.encoding
        staged = nested.nested_parse(batch=self.batch, document=dataset, result=result)
        if result.has_errors() or dry_run:
            if not result.has_errors():
                result.staged = staged.counts()
            return result
        try:
            with transaction.atomic():
                batch = services.batch_lock_for_import(batch=self.batch, user=self.user)
                nested.nested_write(batch=batch, staging=staged, result=result)
                if result.has_errors():
                    raise _Rollback
                result.staged = staged.counts()
                services.batch_add_counts(batch=batch, counts=result.staged)
        except _Rollback:
            result.staged = {}
        except services.BatchStateError as exc:
            result.add_problem(None, "", " ".join(exc.messages))
        return result


STAGING_RESOURCES = [
    CustomerResource,
    BalanceResource,
    DeviceResource,
    MetricResource,
    NestedResource,
]
RESOURCES_BY_KIND = {r.kind: r for r in STAGING_RESOURCES}
