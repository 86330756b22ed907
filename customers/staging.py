"""Staging a file into a batch outside the admin (API, commands, background tasks).

The same formats and resources as the admin's import, so a file stages the same way
whichever door it comes through.
"""

from __future__ import annotations

import os
from pathlib import PurePath
from typing import BinaryIO

from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from console.messages import Message
from console.types import Operator
from customers.formats import STAGING_FORMATS, FileReadError, SourceTable
from customers.mapping import MAPPING_KINDS, HeadersNotMatched, MappingError, table_mapped
from customers.models import MappingProfile, OnProblems, StagingBatch
from customers.resources import RESOURCES_BY_KIND, StagingResult
from customers.services.mappings import profile_remember

ERR_UNKNOWN_KIND = _("“%(kind)s” is not a kind of file; use one of %(kinds)s.")
ERR_UNKNOWN_FORMAT = _("“%(name)s” is not a CSV, TSV, XLSX or JSON file (judged by its name).")

ERR_MAPPING_KIND = _("A nested file is read as it is: mappings are for files of kinds %(kinds)s.")

FORMATS_BY_EXTENSION = {fmt().get_extension(): fmt for fmt in STAGING_FORMATS}
KINDS = tuple(RESOURCES_BY_KIND)


def format_for(file_name: str):
    extension = PurePath(file_name).suffix.lower().lstrip(".")
    return FORMATS_BY_EXTENSION.get("csv" if extension == "txt" else extension)


def batch_stage_file(
    *,
    batch: StagingBatch,
    kind: str,
    file_name: str,
    content: bytes | os.PathLike | BinaryIO,
    user: Operator,
    dry_run: bool = False,
    progress=None,
    mapping: MappingProfile | dict | None = None,
    on_problems: str = OnProblems.REFUSE,
) -> StagingResult:
    """Check (and unless ``dry_run``, stage) one file; problems are in the result.

    ``content`` is the file: a path (``pathlib.Path``) or a seekable binary file object
    (left open), read from there a slice at a time however big it is; or, for a small
    upload already in memory, its bytes. ``file_name`` chooses the format.

    Nothing is staged when the result has any problem. A file whose headers are not the
    kind's own is read through ``mapping`` (a profile or a mapping document); without one,
    it is read only when every header certainly means a field, and refused otherwise with
    a suggested mapping (``result.suggested_mapping``).

    Every problem the file alone can reveal is in the result, validation's own included
    (the contract on each row, emails repeated in the file, customers another batch
    already sent). Those are flaggable (``RowProblem.is_flaggable``): with ``on_problems``
    ``"flag"`` the file is staged anyway and validation flags those rows for fix or
    exclude; with ``"refuse"`` (the default) nothing is staged. Any other problem always
    refuses the file.
    """
    if kind not in RESOURCES_BY_KIND:
        raise ValueError(ERR_UNKNOWN_KIND % {"kind": kind, "kinds": ", ".join(KINDS)})
    resource = RESOURCES_BY_KIND[kind](
        batch=batch, user=user, progress=progress, on_problems=on_problems
    )
    fmt = format_for(file_name)
    if fmt is None:
        result = StagingResult(kind=kind, file_name=file_name, batch=batch)
        result.add_problem(None, "", Message.of(ERR_UNKNOWN_FORMAT, name=file_name))
        return result
    refused = StagingResult(kind=kind, file_name=file_name, batch=batch)
    try:
        dataset = fmt().create_dataset(content)
    except FileReadError as exc:
        refused.add_problem(None, "", exc)
        return refused
    profile = mapping if isinstance(mapping, MappingProfile) else None
    document = profile.document if profile is not None else mapping
    if document is not None and kind not in MAPPING_KINDS:
        refused.add_problem(None, "", Message.of(ERR_MAPPING_KIND, kinds=", ".join(MAPPING_KINDS)))
        return refused
    source_headers = getattr(dataset, "raw_headers", [])
    if isinstance(dataset, SourceTable) and kind in MAPPING_KINDS:
        try:
            dataset, document = table_mapped(
                table=dataset, kind=kind, document=document, time_zone=batch.time_zone
            )
        except MappingError as exc:
            for message in exc.untranslated:
                refused.add_problem(None, "", message)
            if isinstance(exc, HeadersNotMatched):
                refused.suggested_mapping = exc.suggestion.document()
            return refused
    result = resource.import_data(dataset, dry_run=dry_run, file_name=file_name)
    result.mapping_document = document
    if profile is not None and not dry_run and not result.has_errors():
        profile_remember(profile=profile, headers=source_headers)
    return result


def grouped(value: int) -> str:
    """A whole number with the language's thousands separator: 2,340 (2.340 in Spanish)."""
    return number_format(value, force_grouping=True)


def staged_text(counts: dict[str, int]) -> str:
    """``{"customers": 12, "balances": 1}`` as "12 customers, 1 balance" in the language."""
    forms = {
        "customers": lambda n: ngettext("%(n)s customer", "%(n)s customers", n),
        "balances": lambda n: ngettext("%(n)s balance", "%(n)s balances", n),
        "devices": lambda n: ngettext("%(n)s device", "%(n)s devices", n),
        "metrics": lambda n: ngettext("%(n)s metric", "%(n)s metrics", n),
        "transactions": lambda n: ngettext("%(n)s transaction", "%(n)s transactions", n),
        "events": lambda n: ngettext("%(n)s event", "%(n)s events", n),
    }
    return ", ".join(forms[kind](n) % {"n": grouped(n)} for kind, n in counts.items())
