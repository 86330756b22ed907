"""Payloads written by PostgreSQL: one query turns staged rows into each customer's JSON.

Building a body is mostly turning column values into JSON text; PostgreSQL does that
where the rows are, in one query whatever the number of customers, and Python only joins
the texts. The text is byte for byte what ``customers.payload.rows`` and ``body_bytes``
write, for every value a staging column can hold, with one exception: numbers inside
``metadata`` are written as PostgreSQL holds them (exact decimals, ``1e-05`` as
``0.00001``), where Python would write them as floats.

How each value is written (absent ones, null or "", are left out, as ``concat_ws`` skips
nulls): text through ``to_json`` (the same escapes as Python's ``json``); date-times in
UTC with a ``Z``, fractions of a second only when present; UUIDs in canonical form;
decimals through ``trim_scale`` (no trailing zeros, never an exponent); ``metadata``
compact, its members in the order PostgreSQL keeps them (as Python reads them back).
Needs PostgreSQL 13 or later (``trim_scale``).
"""

import json
from functools import cache

from django.db import connection
from django.db.models import Model

from customers.models import StagedBalance, StagedCustomer, StagedDevice, StagedMetric
from customers.payload import spec


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _compact(value: str) -> str:
    """jsonb ``value`` as compact JSON text: PostgreSQL writes ``{"a": 1, "b": [1, 2]}``;
    the spaces after separators outside strings go (strings are matched whole first)."""
    return (
        f"CASE WHEN jsonb_typeof({value}) IN ('object', 'array') "
        rf"""THEN regexp_replace(({value})::text, '("(?:[^"\\]|\\.)*")|([,:]) ', '\1\2', 'g') """
        f"ELSE ({value})::text END"
    )


def _json_value(column: str) -> str:
    """A JSON column (``metadata``); null, empty and blank ones are left out.

    ``json_strip_nulls`` writes JSON compactly, quickest, but drops members whose value is
    null: it is used when the text holds no ``null`` at all. Otherwise an object's members
    are written one by one, which is quicker than compacting its whole text.
    """
    member = f"to_json(e.key)::text || ':' || {_compact('e.value')}"
    members = (
        f"SELECT '{{' || string_agg({member}, ',' ORDER BY e.position) || '}}' "  # noqa: S608
        f"FROM jsonb_each({column}) WITH ORDINALITY AS e(key, value, position)"
    )
    return (
        f"CASE WHEN {column} IS NULL OR {column} IN ('null', '{{}}', '[]', '\"\"') THEN NULL "
        f"WHEN position('null' IN ({column})::text) = 0 "
        f"THEN json_strip_nulls(({column})::json)::text "
        f"WHEN jsonb_typeof({column}) = 'object' THEN ({members}) "
        f"ELSE {_compact(column)} END"
    )


def _value(kind: str, column: str) -> str:
    """SQL writing ``column``'s value as JSON text, or null when it is absent."""
    if kind == "text":
        return f"to_json(NULLIF({column}, ''))::text"
    if kind == "datetime":
        # to_json writes a timestamp as "2023-11-07T05:31:56" (with ".25" when it has a
        # fraction), whatever the session's DateStyle; the Z goes before the closing quote.
        return f"""left(to_json({column} AT TIME ZONE 'UTC')::text, -1) || 'Z"'"""
    if kind == "uuid":
        return f"""'"' || {column}::text || '"'"""
    if kind == "decimal":
        return f"trim_scale({column})::text"
    if kind == "integer":
        return f"{column}::text"
    if kind == "json":
        return _json_value(column)
    raise ValueError(kind)


def _member(key: str, value: str) -> str:
    return f"{_literal(json.dumps(key) + ':')} || {value}"


def _members(model: type[Model], alias: str, fields: spec.Spec) -> list[str]:
    return [
        _member(
            key,
            _value(spec.field_kind(model, column), f"{alias}.{connection.ops.quote_name(column)}"),
        )
        for key, column in fields
    ]


def _object(members: list[str]) -> str:
    return "'{' || concat_ws(',', " + ", ".join(members) + ") || '}'"


def _children(model: type[Model], alias: str, element: str, *, order: str) -> str:
    """The customer's rows of ``model``, each written by ``element``, joined by commas."""
    table = connection.ops.quote_name(model._meta.db_table)
    customer = connection.ops.quote_name(model._meta.get_field("customer").column)
    return (
        f"(SELECT string_agg({element}, ',' ORDER BY {order}) FROM {table} {alias} "  # noqa: S608
        f"WHERE {alias}.{customer} = c.{connection.ops.quote_name('id')})"
    )


@cache
def customers_query() -> str:
    """The query: one row ``(pk, JSON text)`` per customer, in the order of the ids given
    as its one parameter (an array).

    Written from the models' own table and column names and constant JSON keys; the ids
    are the only value from outside, and they come as a parameter.
    """
    period = f"m.{connection.ops.quote_name('period')}"
    order = ", ".join(_literal(name) for name in spec.PERIOD_ORDER)
    periods = _children(
        StagedMetric,
        "m",
        f"to_json({period})::text || ':' || " + _object(_members(StagedMetric, "m", spec.METRIC)),
        order=f'array_position(ARRAY[{order}]::text[], {period}::text), {period} COLLATE "C"',
    )
    updated_at = _members(StagedCustomer, "c", (spec.METRICS_UPDATED_AT,))[0]
    metrics = (
        f"""NULLIF('"metrics":{{' || concat_ws(',', {periods}, {updated_at}) || '}}', """
        """'"metrics":{}')"""
    )
    balances = _children(
        StagedBalance, "b", _object(_members(StagedBalance, "b", spec.BALANCE)), order="b.id"
    )
    info = _object(_members(StagedDevice, "d", spec.DEVICE_INFO))
    device = _object(
        [
            *_members(StagedDevice, "d", (spec.DEVICE_TOKEN,)),
            f"""'"device_info":' || NULLIF({info}, '{{}}')""",
            *_members(StagedDevice, "d", spec.DEVICE_DATES),
        ]
    )
    devices = _children(StagedDevice, "d", device, order="d.id")
    customer = _object(
        [
            *_members(StagedCustomer, "c", spec.CUSTOMER),
            metrics,
            f"""'"balance":[' || {balances} || ']'""",
            f"""'"devices":[' || {devices} || ']'""",
        ]
    )
    table = connection.ops.quote_name(StagedCustomer._meta.db_table)
    return (
        f"SELECT c.id, {customer} "  # noqa: S608
        f"FROM unnest(%s::bigint[]) WITH ORDINALITY AS w(id, position) "
        f"JOIN {table} c ON c.id = w.id ORDER BY w.position"
    )


def customer_texts(ids: list[int]) -> list[tuple[int, str]]:
    """``(pk, JSON text)`` of the customers ``ids`` (distinct, not empty) in their order,
    in one query; ids of no staged customer are left out."""
    with connection.cursor() as cursor:
        cursor.execute(customers_query(), [ids])
        return cursor.fetchall()
