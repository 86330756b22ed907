"""The customers' history as files: one row per transaction or event (CONTRACT.md,
"History: transactions and events").

A row names its customer by legacy id (``customer_id``, its first column); the row is
linked to the customer with that id staged in the same batch when there is one, and left
unlinked otherwise (validation looks for it among the customers sent before). Each row
keeps its number in the file (``source_row``) for the messages that send an operator back
to it.

Columns are the API's field names. A single value nested in the request is a dotted
column (``event.type``, ``event.order.value``, ``order.shipping.value``); an array or a
free-form object is a column of JSON text (``order.products``, ``order.metadata``), or the
array or object itself in a JSON file. The dotted columns are assembled into the row's
``event`` (transactions) or ``order`` (events), leaving out every absent value.

Numbers inside ``event`` and ``order`` are stored as JSON numbers (``json_number``): a
whole number as an integer, any other as the nearest double. That is exact: the decimal
widget accepts at most 15 significant digits, which a double always tells apart, so the
double's shortest form is the decimal as written (``12.50`` becomes ``12.5``). A JSON text
cell's own numbers are read as JSON reads them.

What staging checks is what a row needs to be stored: dates, numbers, UUIDs, JSON, text
lengths, and the file's headers. Whether a transaction's type or an order's payment method
is one Masivo takes, and which fields are required, are validation's questions
(``customers.services.history``), so such a row is staged and flagged there.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from django.db.models import F
from django.utils.translation import gettext_lazy
from import_export.fields import Field

from customers.bulk import AnyOf
from customers.json_widgets import JSONValueWidget, json_number
from customers.models import (
    AMOUNT_DECIMALS,
    AMOUNT_DIGITS,
    StagedCustomer,
    StagedEvent,
    StagedTransaction,
    StagingBatch,
)
from customers.resources.base import StagingResource
from customers.widgets import (
    BooleanWidget,
    CodeWidget,
    DateTimeWidget,
    DecimalWidget,
    TextWidget,
    UUIDWidget,
)

# The longest text of a column with no length of its own (``details``, an order's ids).
TEXT_MAX = 255
DETAILS_MAX = 65_536


def _text(column: str, max_length: int = TEXT_MAX, *, attribute: str = "", required=False):
    widget = TextWidget(max_length=max_length, required=required)
    return Field(attribute=attribute or column, column_name=column, widget=widget)


def _code(column: str, setting: str, max_length: int = TEXT_MAX) -> Field:
    widget = CodeWidget(setting=setting, max_length=max_length)
    return Field(attribute=column, column_name=column, widget=widget)


def _decimal(column: str) -> Field:
    widget = DecimalWidget(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_DECIMALS)
    return Field(attribute=column, column_name=column, widget=widget)


def _datetime(column: str) -> Field:
    return Field(attribute=column, column_name=column, widget=DateTimeWidget())


def _json(column: str, shape: str) -> Field:
    return Field(attribute=column, column_name=column, widget=JSONValueWidget(shape=shape))


def order_fields(prefix: str) -> list[Field]:
    """The columns of an order, under ``prefix`` (``order.``, ``event.order.``)."""
    return [
        _text(f"{prefix}purchase_id"),
        _decimal(f"{prefix}value"),
        _decimal(f"{prefix}discounted_value"),
        _code(f"{prefix}payment_method", "MASIVO_PAYMENT_METHODS"),
        _text(f"{prefix}channel_id"),
        _text(f"{prefix}store_id"),
        _json(f"{prefix}products", "array"),
        _decimal(f"{prefix}shipping.value"),
        _decimal(f"{prefix}shipping.discounted_value"),
        _json(f"{prefix}shipping.redeem", "array"),
        # An array or an object: validation says which Masivo takes.
        _json(f"{prefix}shipping.tags", "any"),
        _json(f"{prefix}shipping.metadata", "object"),
        _json(f"{prefix}redeem", "array"),
        _json(f"{prefix}metadata", "object"),
    ]


def _columns(*fields: Field) -> Callable[[type], type]:
    """Class decorator: the resource's columns, exactly these and in this order (declared
    the usual way, fields named like the model's would be sorted into the model's order,
    and a dotted name cannot be a class attribute)."""

    def declare(cls: type) -> type:
        cls.fields = OrderedDict((field.column_name, field) for field in fields)
        return cls

    return declare


# The dotted columns of a file that share the object around them: the keys of that object
# within the JSON field, and each column's (attribute, own key, whether it is a number).
Group = tuple[tuple[str, ...], list[tuple[str, str, bool]]]


def groups_of(fields: dict[str, Field], prefix: str, present=None) -> list[Group]:
    """The columns under ``prefix`` (of those ``present``, when given) grouped by the object
    around them, outer objects first: ``event.order.shipping.value`` is ``value`` in
    ``("order", "shipping")``."""
    groups: dict[tuple[str, ...], list[tuple[str, str, bool]]] = {}
    for name, field in fields.items():
        if name.startswith(prefix) and (present is None or field.attribute in present):
            *parents, key = name.removeprefix(prefix).split(".")
            groups.setdefault(tuple(parents), []).append((field.attribute, key, is_number(field)))
    return sorted(groups.items(), key=lambda group: len(group[0]))


def is_number(field: Field) -> bool:
    return isinstance(field.widget, DecimalWidget)


def assembled(row: dict, groups: list[Group]) -> dict | None:
    """Take the dotted columns' values out of ``row`` as one JSON object (None when every
    one is absent): ``{"order.shipping.value": 5}`` -> ``{"shipping": {"value": 5}}``."""
    document = None
    take = row.pop
    for parents, columns in groups:
        values = {}
        for attribute, key, as_number in columns:
            value = take(attribute)
            if value is not None and value != "":
                values[key] = json_number(value) if as_number else value
        if not values:
            continue
        if document is None:
            document = {}
        node = document
        for parent in parents:
            node = node.setdefault(parent, {})
        node.update(values)
    return document


class HistoryResource(StagingResource):
    """A file of one kind of history (``document``: the JSON field its dotted columns
    fill, ``document_prefix``: the columns' prefix)."""

    required_columns = ("customer_id",)
    record_column = "customer_id"
    writes_entries = False
    document = ""
    document_prefix = ""

    def prepare(self, result, rows_again) -> dict:
        # Every row that parsed holds every column of the file: which dotted columns the
        # file has is read from its first row (``build``).
        return {"groups": None}

    def check_block(self, block, context, result) -> None:
        """Link the block's rows to their customers staged in the batch (one query), and
        note each row's number in the file."""
        legacy_ids = {row["customer_legacy_id"] for _n, row in block}
        customers = dict(
            StagedCustomer.objects.filter(
                AnyOf(F("legacy_id"), legacy_ids), batch=self.batch
            ).values_list("legacy_id", "pk")
        )
        for row_number, row in block:
            row["customer_id"] = customers.get(row["customer_legacy_id"])
            row["source_row"] = row_number

    def build(self, row: dict, batch: StagingBatch, context: dict) -> dict:
        groups = context["groups"]
        if groups is None:
            groups = context["groups"] = groups_of(self.fields, self.document_prefix, row)
        row[self.document] = assembled(row, groups)
        row["batch_id"] = batch.pk
        return row


def _customer() -> Field:
    return _text("customer_id", attribute="customer_legacy_id", required=True)


@_columns(
    _customer(),
    Field(attribute="reward_id", column_name="reward_id", widget=UUIDWidget()),
    _code("type", "MASIVO_TX_TYPES", max_length=32),
    _decimal("amount"),
    _datetime("issued_at"),
    _datetime("resolved_at"),
    _text("brand_id"),
    _text("store_id"),
    _text("channel_id"),
    _text("funded_by"),
    _text("details", DETAILS_MAX),
    _decimal("cost"),
    _text("event.type", 64),
    *order_fields("event.order."),
)
class TransactionResource(HistoryResource):
    kind = "transactions"
    document = "event"
    document_prefix = "event."

    class Meta:
        model = StagedTransaction
        name = gettext_lazy("transactions")
        fields = ()


@_columns(
    _customer(),
    _text("type", 64),
    Field(attribute="fulfilled", column_name="fulfilled", widget=BooleanWidget()),
    _datetime("issued_at"),
    _datetime("resolved_at"),
    _text("brand_id"),
    *order_fields("order."),
)
class EventResource(HistoryResource):
    kind = "events"
    document = "order"
    document_prefix = "order."

    class Meta:
        model = StagedEvent
        name = gettext_lazy("events")
        fields = ()
