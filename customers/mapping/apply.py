"""Reading a flat file as a kind: as it is when its headers are the kind's own, through a
mapping otherwise (the one given, or one whose every match is certain)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from console.messages import Message
from customers.formats import SourceTable
from customers.mapping.compiler import mapping_compile
from customers.mapping.spec import MappingError, mapping_parse
from customers.mapping.suggest import Suggestion, columns_suggest, headers_are_own
from customers.mapping.targets import kind_targets

ERR_NOT_MATCHED = _(
    "The headers of this file are not those of a %(kind)s file, and no mapping was given. "
    "Not matched: %(columns)s. Stage it with a mapping (a suggested one is offered), or "
    "name the columns %(expected)s."
)
ERR_REQUIRED_NOT_FOUND = _("No column was recognised for the required field(s) %(fields)s.")


class HeadersNotMatched(MappingError):
    """A file in a foreign shape given without a mapping; ``suggestion`` proposes one."""

    def __init__(self, suggestion: Suggestion) -> None:
        targets = kind_targets(suggestion.kind)
        messages = []
        unsure = [m.column for m in suggestion.matches.values() if m.certainty != "certain"]
        if suggestion.unmatched or unsure:
            messages.append(
                Message.of(
                    ERR_NOT_MATCHED,
                    kind=suggestion.kind,
                    columns=", ".join(f"“{c}”" for c in [*suggestion.unmatched, *unsure]),
                    expected=", ".join(targets),
                )
            )
        missing = [n for n, t in targets.items() if t.required and n not in suggestion.matches]
        if missing:
            messages.append(Message.of(ERR_REQUIRED_NOT_FOUND, fields=", ".join(missing)))
        super().__init__(messages)
        self.suggestion = suggestion


def table_mapped(
    *, table: SourceTable, kind: str, document: dict | None, time_zone: str
) -> tuple[SourceTable, dict | None]:
    """``table`` as rows of ``kind``'s own columns, and the mapping document used (None
    when the file needed none). Raises ``MappingError`` (``HeadersNotMatched`` when no
    mapping was given and the headers are not certainly the kind's)."""
    headers = table.raw_headers or table.headers
    if document is None:
        if headers_are_own(kind=kind, headers=headers):
            return table, None
        suggestion = columns_suggest(kind=kind, headers=headers)
        if not suggestion.is_certain:
            raise HeadersNotMatched(suggestion)
        document = suggestion.document(certain_only=True)
    mapping = mapping_parse(document, kind=kind)
    return mapping_compile(mapping, table, time_zone=time_zone), document
