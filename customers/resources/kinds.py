"""One resource per file kind: customers, balances, devices, metrics, and the nested body
(the history's kinds are in ``history``)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext_lazy
from import_export.fields import Field

from console.errors import error_text
from console.messages import Message
from customers import bulk, nested
from customers.bulk import AnyOf
from customers.formats import NestedDocument
from customers.models import (
    AMOUNT_DECIMALS,
    AMOUNT_DIGITS,
    StagedBalance,
    StagedCustomer,
    StagedDevice,
    StagedMetric,
)
from customers.resources.base import (
    ERR_ALREADY_STAGED,
    ERR_DUPLICATE_IN_FILE,
    ERR_FLAT_EXPECTED,
    ERR_PERIOD_STAGED,
    ERR_UNKNOWN_CUSTOMER,
    WRITE_BLOCK,
    Rollback,
    RowsAgain,
    StagingResource,
)
from customers.resources.checks import CustomerChecks, EntryCheck
from customers.resources.results import StagingResult
from customers.resources.seen import FirstRows
from customers.services.batches import (
    BatchStateError,
    batch_add_counts,
    batch_lock_for_import,
)
from customers.services.entries import entries_record
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
    record_column = "id"
    keeps_row_number = True

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

    def prepare(self, result: StagingResult, rows_again: RowsAgain) -> dict:
        def first_details(rows: set[int]) -> dict[int, tuple[str, str]]:
            parsed = rows_again(rows)
            return {n: (row["legacy_id"], row.get("email") or "") for n, row in parsed.items()}

        checks = CustomerChecks(
            batch=self.batch, first_details=first_details, fields=self.fields.values()
        )
        # legacy id -> the row where it first appears: a later row with it is refused.
        return {"ids": FirstRows(), "checks": checks}

    def check_block(self, block, context, result) -> None:
        first_rows = context["ids"]
        repeated = set()
        for row_number, row in block:
            legacy_id = row["legacy_id"]
            first = first_rows.first(legacy_id, row_number)
            if first != row_number:
                repeated.add(row_number)
                result.add_problem(
                    row_number,
                    "id",
                    Message.of(ERR_DUPLICATE_IN_FILE, value=legacy_id, first=first),
                    record=legacy_id,
                )
        staged = set(
            StagedCustomer.objects.filter(
                AnyOf(F("legacy_id"), {row["legacy_id"] for _n, row in block}), batch=self.batch
            ).values_list("legacy_id", flat=True)
        )
        for row_number, row in block:
            if row["legacy_id"] in staged:
                result.add_problem(
                    row_number,
                    "id",
                    Message.of(ERR_ALREADY_STAGED, value=row["legacy_id"]),
                    record=row["legacy_id"],
                )
        context["checks"].block_check(block, result, repeated=repeated)

    def finish(self, context, result) -> None:
        context["checks"].finish(result)

    def entry_check(self, context: dict) -> EntryCheck | None:
        return context["checks"].entries


class ChildResource(StagingResource):
    """A file whose rows belong to a customer of the batch, named by ``customer_id``;
    the customers a block names are looked up with one query for the block."""

    required_columns = ("customer_id",)
    record_column = "customer_id"

    def prepare(self, result: StagingResult, rows_again: RowsAgain) -> dict:
        return {"entries": EntryCheck(self.kind, self.fields.values())}

    def entry_check(self, context: dict) -> EntryCheck | None:
        return context["entries"]

    def check_block(self, block, context, result) -> None:
        legacy_ids = [row.pop("customer_legacy_id") for _n, row in block]
        customers = dict(
            StagedCustomer.objects.filter(
                AnyOf(F("legacy_id"), set(legacy_ids)), batch=self.batch
            ).values_list("legacy_id", "pk")
        )
        entries = context["entries"]
        for (row_number, row), legacy_id in zip(block, legacy_ids, strict=True):
            pk = customers.get(legacy_id)
            if pk is None:
                result.add_problem(
                    row_number,
                    "customer_id",
                    Message.of(ERR_UNKNOWN_CUSTOMER, value=legacy_id, batch=self.batch.name),
                    record=legacy_id,
                )
            entries.row_check(row_number, row, legacy_id, result)
            row["customer_id"] = pk
        self.children_check(block, legacy_ids, context, result)

    def children_check(self, block, legacy_ids: list[str], context, result) -> None:
        """Checks of a kind across its rows, once their customers are resolved
        (``legacy_ids``: each row's customer, as the file names it)."""


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

    def prepare(self, result: StagingResult, rows_again: RowsAgain) -> dict:
        context = super().prepare(result, rows_again)
        # (customer, period) -> the row where it first appears.
        context["periods"] = FirstRows()
        return context

    def children_check(self, block, legacy_ids, context, result) -> None:
        first_rows = context["periods"]
        repeated = []
        for (row_number, row), legacy_id in zip(block, legacy_ids, strict=True):
            if row["customer_id"] is None:
                continue
            first = first_rows.first(f"{row['customer_id']}\x1f{row['period']}", row_number)
            if first != row_number:
                repeated.append((row_number, row, legacy_id, first))
        pks = {row["customer_id"] for _n, row in block if row["customer_id"]}
        staged = set(
            StagedMetric.objects.filter(AnyOf(F("customer_id"), pks)).values_list(
                "customer_id", "period"
            )
        )
        for row_number, row, legacy_id, first in repeated:
            result.add_problem(
                row_number,
                "period",
                Message.of(ERR_DUPLICATE_IN_FILE, value=row["period"], first=first),
                record=legacy_id,
            )
        for (row_number, row), legacy_id in zip(block, legacy_ids, strict=True):
            if (row["customer_id"], row["period"]) in staged:
                result.add_problem(
                    row_number,
                    "period",
                    Message.of(ERR_PERIOD_STAGED, customer=legacy_id, period=row["period"]),
                    record=legacy_id,
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
        result.on_problems = self.on_problems
        if not isinstance(dataset, NestedDocument):
            result.add_problem(None, "", ERR_FLAT_EXPECTED)
            return result
        result.encoding = dataset.encoding
        staged = nested.nested_parse(batch=self.batch, document=dataset, result=result)
        self._check_across(staged.customers, result)
        if result.has_errors() or dry_run:
            if not result.has_errors():
                result.staged = staged.counts()
            return result
        try:
            with transaction.atomic():
                batch = batch_lock_for_import(batch=self.batch, user=self.user)
                nested.nested_write(batch=batch, staging=staged, result=result)
                if result.has_errors():
                    raise Rollback
                result.staged = staged.counts()
                batch_add_counts(batch=batch, counts=result.staged)
                entries_record(batch=batch, revision=None)  # not checked as rows are
                bulk.tables_analyze_after_commit(
                    written={model: result.staged[kind] for kind, model in NESTED_TABLES.items()}
                )
        except Rollback:
            result.staged = {}
        except BatchStateError as exc:
            result.add_problem(None, "", error_text(exc))
        return result

    def _check_across(self, customers: list[dict], result: StagingResult) -> None:
        """Customers another batch sent and emails repeated in the document, per block."""
        by_number = {customer["_number"]: customer for customer in customers}
        first_row = {customer["id"]: customer["_number"] for customer in customers}

        def first_details(rows: set[int]) -> dict[int, tuple[str, str]]:
            return {n: (by_number[n]["id"], by_number[n].get("email") or "") for n in rows}

        checks = CustomerChecks(batch=self.batch, first_details=first_details)
        for start in range(0, len(customers), WRITE_BLOCK):
            block = customers[start : start + WRITE_BLOCK]
            checks.across_check(
                [
                    (c["_number"], c["id"], c.get("email"), first_row[c["id"]] == c["_number"])
                    for c in block
                ],
                result,
            )
        checks.finish(result)
        result.problems_sort()


# The tables a nested document writes to, by the name of their count.
NESTED_TABLES = {
    "customers": StagedCustomer,
    "balances": StagedBalance,
    "devices": StagedDevice,
    "metrics": StagedMetric,
}
