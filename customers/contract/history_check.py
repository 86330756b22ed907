"""One history row's entry (a transaction or an event, as the request carries it) checked
with the history's strict serializers (``history``): the problems, by field."""

from __future__ import annotations

from customers.contract.history import EventSerializer, TransactionSerializer
from customers.contract.messages import FieldProblem
from customers.contract.serializers import serializer_problems

SERIALIZERS = {"transactions": TransactionSerializer, "events": EventSerializer}


def history_entry_problems(kind: str, entry: dict) -> list[FieldProblem]:
    """What the contract refuses in ``entry`` of ``kind`` (``transactions`` or ``events``),
    as the request would carry it, each message kept untranslated too."""
    serializer = SERIALIZERS[kind](data=entry, context={"strict": True})
    if serializer.is_valid():
        return []
    return serializer_problems(serializer)
