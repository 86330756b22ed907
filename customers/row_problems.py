"""One problem with a file, where it is and what it says, kept untranslated: what an import
reports (``customers.resources.results``) and what a background upload keeps
(``StagingUpload.problems``) for readers of any language."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext_lazy

from console.messages import Message, message_from_json

# A list of problems shown on a page, printed by a command or returned by the API holds
# the first ones only, and counts the rest (the file with the problems beside each row,
# from the preview or ``stage_file --errors-file``, holds them all).
PROBLEMS_SHOWN = 100
MORE_PROBLEMS = ngettext_lazy(
    "… and %(count)s more problem, not listed here.",
    "… and %(count)s more problems, not listed here.",
    "count",
)


def more_problems_text(hidden: int) -> str:
    """The line that ends a list of problems cut at ``PROBLEMS_SHOWN``."""
    return MORE_PROBLEMS % {"count": hidden}


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One problem with a file: its row and column where it has them, and the row's id
    (``record``: a customer's legacy id, a child row's ``customer_id``) where known.
    ``is_flaggable``: one validation would flag on the staged customer, which the operator
    may stage and fix later (``OnProblems.FLAG``); any other always refuses the file.

    What it says is kept untranslated (``untranslated``), since a background upload's
    problems are read later, by others, in their language; ``message`` says it in the
    active language."""

    row: int | None
    column: str
    untranslated: Message
    record: str = ""
    is_flaggable: bool = False

    @property
    def message(self) -> str:
        return str(self.untranslated)

    def line(self, file_name: str) -> str:
        """The problem as one line that names its file (when it has a name), row and
        column, in the active language."""
        return f"{file_name}: {self}" if file_name else str(self)

    def __str__(self) -> str:
        if self.row is None:
            return self.message
        values = {
            "row": self.row,
            "record": self.record,
            "column": self.column,
            "message": self.message,
        }
        if self.record and self.column:
            return _("row %(row)s (id “%(record)s”), column “%(column)s”: %(message)s") % values
        if self.record:
            return _("row %(row)s (id “%(record)s”): %(message)s") % values
        if self.column:
            return _("row %(row)s, column “%(column)s”: %(message)s") % values
        return _("row %(row)s: %(message)s") % values

    def as_json(self) -> dict[str, Any]:
        """The problem as a background upload keeps it (``from_json`` reads it back): where
        it is, and its message's template and parameters, or its words kept as they are."""
        where = {"row": self.row, "column": self.column, "record": self.record}
        message = self.untranslated
        if message.is_verbatim:
            return {**where, "text": message.template}
        return {**where, "template": message.template, "params": message.params_json()}

    @classmethod
    def from_json(cls, kept: Mapping[str, Any]) -> RowProblem:
        """A problem as ``as_json`` kept it."""
        if "template" in kept:
            message = message_from_json(kept["template"], kept.get("params"))
        else:
            message = Message.verbatim(kept.get("text", ""))
        return cls(kept.get("row"), kept.get("column", ""), message, kept.get("record", ""))
