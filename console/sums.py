"""Exact sums of decimal columns, on every database.

PostgreSQL adds ``numeric`` values exactly. SQLite has no decimal type: its ``SUM`` adds
floats, and Django reads the result back rounded to 15 significant digits, so
0.10 + 0.20 - 0.30 comes back as 5.55e-17, not 0. Where an exact comparison depends on a
sum (a customer's transactions against its balance), SQLite's rows are added here, in
Python, as the ``Decimal`` values Django reads for each row.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import connections
from django.db.models import QuerySet, Sum


def decimal_sums(queryset: QuerySet, *, by: tuple[str, ...], field: str) -> list[tuple]:
    """``(*by, total)`` for each group of ``queryset`` by the fields ``by``: the exact sum
    of ``field`` (None when every value of the group is null)."""
    if connections[queryset.db].vendor == "postgresql":
        return list(queryset.values_list(*by).annotate(total=Sum(field)).order_by())
    totals: dict[tuple, Decimal | None] = {}
    for *key, amount in queryset.values_list(*by, field).order_by().iterator(chunk_size=5000):
        group = tuple(key)
        if amount is None:
            totals.setdefault(group, None)
        else:
            totals[group] = (totals.get(group) or Decimal(0)) + amount
    return [(*group, total) for group, total in totals.items()]
