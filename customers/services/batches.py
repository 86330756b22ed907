"""A batch's life outside validation and approval: creating it, moving its status, locking
it for an edit or an import, its counters, an operator's edit of a customer, reopening it,
and asking for its dry run.

Every status change of a batch goes through ``batch_transition``; its callers raise the
``BatchStateError`` they own when it did not move.
"""

from __future__ import annotations

import zoneinfo

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from console.errors import InvalidInput, NotPermitted, StateConflict
from console.states import rows_transition
from console.types import Operator
from customers.models import StagedCustomer, StagingBatch
from customers.selectors import batch_reference_id

Status = StagingBatch.Status

ERR_NOT_EDITABLE = _(
    "Batch “%(batch)s” is %(status)s: files can be imported and rows edited only in a "
    "draft or validated batch. Reopen it first."
)
ERR_NOT_EDITABLE_SUBMITTED = _(
    "Batch “%(batch)s” is submitted: its files and rows can no longer change, and a "
    "submitted batch cannot be reopened. Stage the corrected files into a new batch."
)
ERR_TRANSITION = _("Batch “%(batch)s” is %(status)s and cannot become %(target)s.")
ERR_NAME_IS_ID = _(
    "“%(name)s” cannot be a batch's name: a number, or “id:” and a number, stands for a "
    "batch's id. Add a word to the name."
)
ERR_TIME_ZONE = _("“%(value)s” is not a time zone name such as UTC or America/Bogota.")
ERR_REOPEN_PERMISSION = _("You do not have permission to reopen batches.")
ERR_DRY_RUN_STATE = _("Batch “%(batch)s” is %(status)s: validate it before asking for its dry run.")


class BatchStateError(StateConflict):
    """The batch is not in a state that allows what was asked."""


def batch_state_error(message, *, batch: StagingBatch, **values) -> BatchStateError:
    """``message`` about ``batch`` (its name and status filled in) as the error to raise."""
    values = {"batch": batch.name, "status": batch.get_status_display().lower(), **values}
    return BatchStateError(message % values, code="state")


def batch_frozen_error(
    *, batch: StagingBatch, reopenable: str, final: str, **values
) -> BatchStateError:
    """The refusal of a change to a batch that is not editable, in the words its status
    calls for: ``reopenable`` (which may say "reopen it first") when the batch can go back
    to draft (``StagingBatch.REOPENABLE_STATUSES``: an approved batch), ``final`` when it
    never can (a submitted batch)."""
    message = reopenable if batch.status in StagingBatch.REOPENABLE_STATUSES else final
    return batch_state_error(message, batch=batch, **values)


def batch_time_zone_check(*, time_zone: str) -> None:
    """Refuse a time zone name the batch's dates could not be read in."""
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(ERR_TIME_ZONE % {"value": time_zone}, code="time_zone") from exc


def batch_name_check(*, name: str) -> None:
    """Refuse a name that reads as a batch's id (``7``, ``id:7``): commands and scripts
    name a batch by its name or its id (``customers.selectors.batch_find``), and such a
    name would hide, or be hidden by, the batch with that id."""
    if batch_reference_id(name) is not None:
        raise InvalidInput(ERR_NAME_IS_ID % {"name": name.strip()}, code="name")


def batch_create(*, name: str, user: Operator, time_zone: str = "UTC") -> StagingBatch:
    """A new draft batch; ``user`` is its creator, one of its stagers."""
    batch_name_check(name=name)
    batch_time_zone_check(time_zone=time_zone)
    batch = StagingBatch(name=name, time_zone=time_zone, created_by=user)
    batch.full_clean()
    batch.save()
    return batch


def batch_transition(
    *, pk: int, to: str, expected: tuple[str, ...] | None = None, **fields
) -> bool:
    """Move batch ``pk`` to ``to`` if its status allows it (and is one of ``expected``), in
    one conditional UPDATE that also writes ``fields`` and ``updated_at``. True when it
    moved: a concurrent change of the row leaves it where it is."""
    fields.setdefault("updated_at", timezone.now())
    moved = rows_transition(
        StagingBatch.objects.filter(pk=pk),
        transitions=StagingBatch.TRANSITIONS,
        to=to,
        expected=expected,
        **fields,
    )
    return bool(moved)


def batch_edit_check(*, batch: StagingBatch) -> None:
    """Refuse a change of the staged data of a batch that is approved or submitted."""
    if not batch.is_editable:
        raise batch_frozen_error(
            batch=batch, reopenable=ERR_NOT_EDITABLE, final=ERR_NOT_EDITABLE_SUBMITTED
        )


def batch_lock_editable(*, batch: StagingBatch) -> StagingBatch:
    """Lock the batch row for a change of its staged data, inside the caller's transaction.

    Refuses a batch that is approved or submitted; a validated batch goes back to draft,
    since its validation no longer describes its data.
    """
    locked = StagingBatch.objects.select_for_update().get(pk=batch.pk)
    batch_edit_check(batch=locked)
    if locked.status == Status.VALIDATED:
        # Under the row lock: nothing can move it meanwhile.
        batch_transition(
            pk=locked.pk,
            to=Status.DRAFT,
            validated_at=None,
            validated_by=None,
            validated_version=None,
        )
        locked.refresh_from_db()
    return locked


def batch_mark_edited(*, batch: StagingBatch, user: Operator | None = None) -> StagingBatch:
    """Record that staged rows of ``batch`` changed (validated -> draft), and by whom."""
    assert transaction.get_connection().in_atomic_block, "call inside transaction.atomic()"  # noqa: S101
    locked = batch_lock_editable(batch=batch)
    if user is not None:
        locked.stagers.add(user)
    return locked


def batch_lock_for_import(*, batch: StagingBatch, user: Operator) -> StagingBatch:
    """Lock ``batch`` for an import inside the caller's transaction and record who imports.

    The importer counts as a stager of the batch for the four-eyes rule.
    """
    locked = batch_mark_edited(batch=batch, user=user)
    now = timezone.now()
    StagingBatch.objects.filter(pk=locked.pk).update(
        last_imported_by=user, last_imported_at=now, updated_at=now
    )
    locked.last_imported_by, locked.last_imported_at = user, now
    return locked


_COUNTERS = {
    "customers": "customer_count",
    "balances": "balance_count",
    "devices": "device_count",
    "metrics": "metric_count",
    "transactions": "transaction_count",
    "events": "event_count",
}


def batch_add_counts(*, batch: StagingBatch, counts: dict[str, int]) -> None:
    """Add newly staged rows (``{"customers": n, "balances": n, ...}``) to the counters."""
    updates = {_COUNTERS[kind]: F(_COUNTERS[kind]) + n for kind, n in counts.items() if n}
    if updates:
        StagingBatch.objects.filter(pk=batch.pk).update(**updates)


def batch_refresh_counts(*, batch: StagingBatch) -> None:
    """Recount the batch's staged rows into its counters."""
    StagingBatch.objects.filter(pk=batch.pk).update(
        customer_count=batch.customers.count(),
        balance_count=batch.balances.count(),
        device_count=batch.devices.count(),
        metric_count=batch.metrics.count(),
        transaction_count=batch.transactions.count(),
        event_count=batch.events.count(),
        excluded_count=batch.customers.filter(is_excluded=True).count(),
    )


def customer_save(*, customer: StagedCustomer, user: Operator) -> StagedCustomer:
    """Save an operator's edit of a staged customer (and its children, by the caller).

    Refused when the batch is approved or submitted; a validated batch goes back to draft.
    """
    with transaction.atomic():
        batch_mark_edited(batch=customer.batch, user=user)
        customer.save()
        batch_refresh_counts(batch=customer.batch)
    return customer


def customer_delete(*, customer: StagedCustomer, user: Operator) -> None:
    """Delete a staged customer (and its children); refused as ``customer_save`` is."""
    with transaction.atomic():
        batch = batch_mark_edited(batch=customer.batch, user=user)
        customer.delete()
        batch_refresh_counts(batch=batch)


def batch_reopen(*, batch: StagingBatch, user: Operator) -> StagingBatch:
    """Void a batch's approval (or validation) so it can be edited again."""
    if not (
        user.has_perm("customers.approve_stagingbatch")
        or user.has_perm("customers.import_stagingbatch")
    ):
        raise NotPermitted(ERR_REOPEN_PERMISSION)
    moved = batch_transition(
        pk=batch.pk,
        to=Status.DRAFT,
        approved_by=None,
        approved_at=None,
        approved_version=None,
        validated_by=None,
        validated_at=None,
        validated_version=None,
    )
    batch.refresh_from_db()
    if not moved:
        raise batch_state_error(ERR_TRANSITION, batch=batch, target=Status.DRAFT.label.lower())
    return batch


def batch_dry_run_check(*, batch: StagingBatch) -> None:
    """Refuse the dry run of a batch whose data has not been validated: its request bodies
    are shown only once validation has vouched for them."""
    if not batch.can_dry_run:
        raise batch_state_error(ERR_DRY_RUN_STATE, batch=batch)
