"""One history row's entry (a transaction or an event, as the request carries it) checked
with the history's strict serializers (``history``): the problems, by field.

Validation checks every row of a batch's history. DRF builds a serializer's fields anew
for each instance (a deep copy of the declared ones), which cost more than the checking
itself; a ``HistoryEntryCheck`` builds one tree per kind and runs each entry through it
(``run_validation``, what ``is_valid`` runs), with what each run notes cleared first.
"""

from __future__ import annotations

from rest_framework import serializers

from customers.contract.history import EventSerializer, TransactionSerializer
from customers.contract.messages import FieldProblem
from customers.contract.serializers import problems_from_errors, serializer_messages_fresh

SERIALIZERS = {"transactions": TransactionSerializer, "events": EventSerializer}


class HistoryEntryCheck:
    """What the contract refuses in entries of history, each message kept untranslated too;
    settings are read once, when the first entry of a kind is checked."""

    def __init__(self):
        self._trees: dict[str, serializers.Serializer] = {}

    def problems(self, kind: str, entry: dict) -> list[FieldProblem]:
        """The problems of ``entry`` of ``kind`` (``transactions`` or ``events``), as the
        request would carry it."""
        tree = self._trees.get(kind)
        if tree is None:
            tree = self._trees[kind] = SERIALIZERS[kind](context={"strict": True})
        messages = serializer_messages_fresh(tree)
        try:
            tree.run_validation(entry)
        except serializers.ValidationError as exc:
            return problems_from_errors(exc.detail, messages=messages)
        return []
