"""Whether validation must check each customer's entry against the contract again.

Every import checks each row's own entry against the contract before writing it
(``customers.resources.checks.EntryCheck``); validation checks each customer's whole entry:
its own row with its balances, devices and metrics periods. That entry is nothing but its
rows' entries put together, and no rule of the contract looks across them (a balance, a
device, a period is judged alone; each period appears once, as the table's unique
constraint keeps it). So once every staged row passed at its import and nothing changed
since, checking the entries again would find nothing.

A batch records it as a version: ``entries_checked_version``, the ``content_version`` at
which every staged row's entry is known to pass, with ``entries_checked_contract``, the
revision of the contract they passed (``customers.contract.revision``: its code and
settings). The version triggers (``customers.versioning``) move the content version at
any change of a staged row after a record, by any door, so a record equal to the content
version proves that nothing changed.

- An import that checked every row it writes and found nothing wrong with any entry
  carries the record to the version after its rows, when it held as the import began (or
  the batch had no rows yet); any other import clears it. History rows are no part of a
  customer's entry: their imports carry it as it is.
- Validation trusts the record when it holds for the contract of the day and no balance,
  device or metric of another batch belongs to a customer of this one (such a row is in
  that customer's entry, but its import moved its own batch's version). Customers whose
  stored metadata is over half its bound are checked even then: that is where a value
  written back from the database could weigh differently. Otherwise validation checks
  every entry, and records the version when none failed.
"""

from __future__ import annotations

from django.db.models import F, Func, IntegerField, TextField
from django.db.models.functions import Cast

from customers.contract.bounds import METADATA_MAX_BYTES
from customers.models import StagedCustomer, StagingBatch
from customers.services.problems import CHILD_KINDS

CHILD_MODELS = tuple(model for model, *_rest in CHILD_KINDS)
ENTRY_MODELS = (StagedCustomer, *CHILD_MODELS)
# Metadata over this many bytes, as stored, is checked by validation in any case.
RECHECKED_METADATA_BYTES = METADATA_MAX_BYTES // 2


class _Bytes(Func):
    """The length of a text in bytes (UTF-8)."""

    function = "OCTET_LENGTH"
    output_field = IntegerField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="LENGTH(CAST(%(expressions)s AS BLOB))")


def entries_known(batch: StagingBatch, revision: str) -> bool:
    """Whether the record of ``batch`` (locked, as just read) proves that every staged
    entry passes the contract of ``revision``."""
    return (
        batch.entries_checked_version is not None
        and batch.entries_checked_version == batch.content_version
        and batch.entries_checked_contract == revision
    )


def import_entries_known(batch: StagingBatch, revision: str) -> bool:
    """At the start of an import into ``batch`` (locked): whether every entry already
    staged is known to pass, by its record or because it has none."""
    if entries_known(batch, revision):
        return True
    return not any(model.objects.filter(batch=batch).exists() for model in ENTRY_MODELS)


def entries_record(*, batch: StagingBatch, revision: str | None) -> None:
    """Record that every entry of ``batch`` (locked) passes the contract of ``revision``, at
    its content version now (its own writes included); or, with None, that this is not
    known."""
    StagingBatch.objects.filter(pk=batch.pk).update(
        entries_checked_version=F("content_version") if revision else None,
        entries_checked_contract=revision or "",
    )


def _children_of_others(batch: StagingBatch) -> bool:
    """Whether a balance, device or metric staged in another batch belongs to a customer
    of ``batch``."""
    return any(
        model.objects.filter(customer__batch=batch).exclude(batch=batch).exists()
        for model in CHILD_MODELS
    )


def validation_entries_known(batch: StagingBatch, revision: str) -> bool:
    """At the start of a validation of ``batch`` (locked): whether its entries need not be
    checked again (see the module's docstring)."""
    return entries_known(batch, revision) and not _children_of_others(batch)


def entries_rechecked(batch: StagingBatch) -> set[int]:
    """The customers of ``batch`` whose entries validation checks even when they are
    known to pass: those with large metadata."""
    return set(
        StagedCustomer.objects.filter(batch=batch, metadata__isnull=False)
        .annotate(size=_Bytes(Cast("metadata", TextField())))
        .filter(size__gt=RECHECKED_METADATA_BYTES)
        .values_list("pk", flat=True)
    )
