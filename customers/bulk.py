"""Writing many new rows at once: PostgreSQL's COPY through psycopg 3, ``bulk_create``
elsewhere; and looking up thousands of keys at once (``AnyOf``).

An import stages hundreds of thousands of rows. ``bulk_create`` makes a model object of
every row, turns every value into a query parameter and every thousand rows into a long
INSERT for the server to parse; COPY streams the rows in PostgreSQL's text format instead,
several times faster, inside the caller's transaction like any other write.

Rows come as ``{attname: value}`` dicts; fields a row leaves out take their defaults.
Values go to psycopg as they are when psycopg writes them exactly as Django would (text,
whole numbers, booleans, decimals, UUIDs, aware date-times); anything else (a naive
date-time, a JSON document, a type the field does not expect) is prepared by the field
itself, as a query parameter would be. Primary keys are left to the database.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections, models, transaction
from django.db.models.lookups import Lookup

# Rows per INSERT where COPY is not available.
INSERT_BATCH = 1000
# Rows written at once after which PostgreSQL's statistics of the table are renewed.
ANALYZE_AFTER_ROWS = 10_000

# Field classes whose values psycopg writes exactly as Django would when they have one of
# these types; checked in order, so subclasses (EmailField, PositiveIntegerField, ...)
# come under their base class. Other fields' values are always prepared by the field.
_AS_IS: tuple[tuple[type[models.Field], frozenset[type]], ...] = (
    (models.ForeignKey, frozenset({int})),
    (models.BooleanField, frozenset({bool})),
    (models.CharField, frozenset({str})),
    (models.TextField, frozenset({str})),
    (models.IntegerField, frozenset({int})),
    (models.DecimalField, frozenset({Decimal, int})),
    (models.UUIDField, frozenset({uuid.UUID})),
    (models.DateTimeField, frozenset({dt.datetime})),
)
_NONE = type(None)


def _as_is_types(field: models.Field) -> frozenset[type]:
    for field_class, types in _AS_IS:
        if isinstance(field, field_class):
            return types
    return frozenset()


def _column(field: models.Field, values: list[Any], connection) -> list[Any]:
    """One column's values as psycopg should write them."""
    types = _as_is_types(field)
    found = set(map(type, values)) - {_NONE}
    if found <= types and (
        dt.datetime not in found or all(v.tzinfo is not None for v in values if v is not None)
    ):
        return values
    prepare = field.get_db_prep_save
    return [None if value is None else prepare(value, connection) for value in values]


def _fields(model: type[models.Model]) -> list[models.Field]:
    return [
        field
        for field in model._meta.concrete_fields
        if not (field.primary_key and isinstance(field, models.AutoField))
    ]


def _copy(model: type[models.Model], rows: Sequence[dict], connection) -> None:
    fields = _fields(model)
    columns = []
    for field in fields:
        name = field.attname
        if any(name in row for row in rows):
            default = field.get_default()
            values = [row.get(name, default) for row in rows]
        else:
            values = [field.get_default()] * len(rows)
        columns.append(_column(field, values, connection))
    names = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
    ):
        for values in zip(*columns, strict=True):
            copy.write_row(values)


def rows_insert(*, model: type[models.Model], rows: Sequence[dict], using: str = "default") -> int:
    """Insert ``rows`` (``{attname: value}`` of new ``model`` objects) in the caller's
    transaction; returns how many were written. Constraint violations raise
    ``django.db.IntegrityError``, as with ``bulk_create``."""
    if not rows:
        return 0
    connection = connections[using]
    fields = _fields(model)
    if connection.vendor != "postgresql" or any(
        getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
        for field in fields
    ):
        model.objects.using(using).bulk_create(
            [model(**row) for row in rows], batch_size=INSERT_BATCH
        )
    else:
        _copy(model, rows, connection)
    return len(rows)


def table_analyze(*, model: type[models.Model], using: str = "default") -> None:
    """Renew PostgreSQL's statistics of ``model``'s table (``ANALYZE``; nothing elsewhere).

    Right after a large import the planner still sees the table as it was before, often
    empty, and plans the next reads for a handful of rows: validating 100,000 fresh
    customers read each page of them in about 50 ms instead of 1. The autovacuum daemon
    renews the statistics too, but only later. Run it outside the import's transaction:
    ``ANALYZE`` locks the table against other ``ANALYZE`` runs until the transaction ends.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def tables_analyze_after_commit(*, written: dict[type[models.Model], int]) -> None:
    """Once the current transaction commits, renew the statistics of the tables it wrote
    at least ``ANALYZE_AFTER_ROWS`` rows to (``written``: rows by model)."""
    for model, count in written.items():
        if count >= ANALYZE_AFTER_ROWS:
            transaction.on_commit(functools.partial(table_analyze, model=model))


class AnyOf(Lookup):
    """``queryset.filter(AnyOf(F("legacy_id"), ids))``: the field is one of ``ids``.

    An import asks, block by block, which of 5000 ids are staged. ``legacy_id__in=ids``
    sends them as 5000 parameters: Django prepares each, psycopg splits a query of 5000
    placeholders, the server parses them. On PostgreSQL this sends one array instead
    (``= ANY(%s::varchar[])``), for about a seventh of the time; elsewhere it is ``IN``.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if connection.vendor == "postgresql":
            array_type = self.lhs.output_field.cast_db_type(connection)
            return f"{lhs} = ANY(%s::{array_type}[])", [*lhs_params, values]
        if not values:
            raise EmptyResultSet
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]
