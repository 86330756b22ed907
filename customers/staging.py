"""Staging a file into a batch outside the admin (API, commands, background tasks).

The same formats and resources as the admin's import, so a file stages the same way
whichever door it comes through.
"""

from __future__ import annotations

from pathlib import PurePath

from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from console.types import Operator
from customers.formats import STAGING_FORMATS, FileReadError
from customers.models import StagingBatch
from customers.resources import RESOURCES_BY_KIND, StagingResult

ERR_UNKNOWN_KIND = _("“%(kind)s” is not a kind of file; use one of %(kinds)s.")
ERR_UNKNOWN_FORMAT = _("“%(name)s” is not a CSV, TSV, XLSX or JSON file (judged by its name).")

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
    content: bytes,
    user: Operator,
    dry_run: bool = False,
    progress=None,
) -> StagingResult:
    """Check (and unless ``dry_run``, stage) one file; problems are in the result.

    Nothing is staged when the result has any problem.
    """
    if kind not in RESOURCES_BY_KIND:
        raise ValueError(ERR_UNKNOWN_KIND % {"kind": kind, "kinds": ", ".join(KINDS)})
    resource = RESOURCES_BY_KIND[kind](batch=batch, user=user, progress=progress)
    fmt = format_for(file_name)
    if fmt is None:
        result = StagingResult(kind=kind, file_name=file_name, batch=batch)
        result.add_problem(None, "", ERR_UNKNOWN_FORMAT % {"name": file_name})
        return result
    try:
        dataset = fmt().create_dataset(content)
    except FileReadError as exc:
        result = StagingResult(kind=kind, file_name=file_name, batch=batch)
        result.add_problem(None, "", str(exc))
        return result
    return resource.import_data(dataset, dry_run=dry_run, file_name=file_name)


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
    }
    return ", ".join(forms[kind](n) % {"n": grouped(n)} for kind, n in counts.items())
