"""Writes to staging: every status change of a batch goes through here.

Admin actions, API views, management commands and tasks call these functions; they never
assign ``batch.status`` themselves.
"""

from __future__ import annotations

import zoneinfo

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from console.errors import InvalidInput, NotPermitted, StateConflict
from customers.models import StagedCustomer, StagingBatch

Status = StagingBatch.Status

ERR_NOT_EDITABLE = _(
    "Batch “%(batch)s” is %(status)s: files can be imported and rows edited only in a "
    "draft or validated batch. Reopen it first."
)
ERR_TRANSITION = _("Batch “%(batch)s” is %(status)s and cannot become %(target)s.")
ERR_TIME_ZONE = _("“%(value)s” is not a time zone name such as UTC or America/Bogota.")


class BatchStateError(StateConflict):
    """The batch is not in a state that allows what was asked."""


def batch_create(*, name: str, user, time_zone: str = "UTC") -> StagingBatch:
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(ERR_TIME_ZONE % {"value": time_zone}, code="time_zone") from exc
    batch = StagingBatch(name=name, time_zone=time_zone, created_by=user)
    batch.full_clean()
    batch.save()
    return batch


def batch_transition(
    *, batch: StagingBatch, to: str, expected: tuple[str, ...] | None = None, **fields
) -> StagingBatch:
    """Move ``batch`` to ``to`` if its current status allows it, atomically.

    A conditional UPDATE guards against a concurrent change: when the row's status is no
    longer one that may move to ``to`` (or one of ``expected``), nothing is written and
    ``BatchStateError`` is raised. ``fields`` are written in the same UPDATE.
    """
    allowed = tuple(status for status, targets in StagingBatch.TRANSITIONS.items() if to in targets)
    if expected is not None:
        allowed = tuple(s for s in allowed if s in expected)
    fields["updated_at"] = timezone.now()
    updated = StagingBatch.objects.filter(pk=batch.pk, status__in=allowed).update(
        status=to, **fields
    )
    batch.refresh_from_db()
    if not updated:
        raise BatchStateError(
            ERR_TRANSITION
            % {
                "batch": batch.name,
                "status": batch.get_status_display().lower(),
                "target": Status(to).label.lower(),
            },
            code="state",
        )
    return batch


def batch_lock_editable(*, batch: StagingBatch) -> StagingBatch:
    """Lock the batch row for a change of its staged data, inside the caller's transaction.

    Refuses a batch that is approved or submitted; a validated batch goes back to draft,
    since its validation no longer describes its data.
    """
    locked = StagingBatch.objects.select_for_update().get(pk=batch.pk)
    if not locked.is_editable:
        raise BatchStateError(
            ERR_NOT_EDITABLE
            % {"batch": locked.name, "status": locked.get_status_display().lower()},
            code="state",
        )
    if locked.status == Status.VALIDATED:
        batch_transition(batch=locked, to=Status.DRAFT, validated_at=None, validated_by=None)
    return locked


def batch_mark_edited(*, batch: StagingBatch, user=None) -> StagingBatch:
    """Record that staged rows of ``batch`` changed (validated -> draft), and by whom."""
    assert transaction.get_connection().in_atomic_block, "call inside transaction.atomic()"  # noqa: S101
    locked = batch_lock_editable(batch=batch)
    if user is not None:
        locked.stagers.add(user)
    return locked


def batch_lock_for_import(*, batch: StagingBatch, user) -> StagingBatch:
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
        excluded_count=batch.customers.filter(is_excluded=True).count(),
    )


def customer_save(*, customer: StagedCustomer, user) -> StagedCustomer:
    """Save an operator's edit of a staged customer (and its children, by the caller).

    Refused when the batch is approved or submitted; a validated batch goes back to draft.
    """
    with transaction.atomic():
        batch_mark_edited(batch=customer.batch, user=user)
        customer.save()
        batch_refresh_counts(batch=customer.batch)
    return customer


def customer_delete(*, customer: StagedCustomer, user) -> None:
    with transaction.atomic():
        batch = batch_mark_edited(batch=customer.batch, user=user)
        customer.delete()
        batch_refresh_counts(batch=batch)


ERR_APPROVE_PERMISSION = _("You do not have permission to approve batches.")
ERR_APPROVE_OWN_BATCH = _(
    "Four-eyes rule: batch “%(batch)s” must be approved by someone other than the people "
    "who created it, imported into it or changed its rows."
)
ERR_APPROVE_NOT_VALIDATED = _(
    "Batch “%(batch)s” is %(status)s: only a validated batch can be approved. Validate it first."
)
ERR_REOPEN_PERMISSION = _("You do not have permission to reopen batches.")


def batch_is_staged_by(*, batch: StagingBatch, user) -> bool:
    """Whether ``user`` created ``batch``, imported into it or changed its staged rows."""
    return user.pk in (batch.created_by_id, batch.last_imported_by_id) or (
        batch.stagers.filter(pk=user.pk).exists()
    )


def batch_may_approve(*, batch: StagingBatch, user) -> bool:
    """The four-eyes rule: unless ``MIGRATION_FOUR_EYES`` is off, nobody who put data into
    ``batch`` may approve it."""
    from django.conf import settings

    return not (settings.MIGRATION_FOUR_EYES and batch_is_staged_by(batch=batch, user=user))


def batch_approve(*, batch: StagingBatch, user) -> StagingBatch:
    """Approve a validated batch, freezing it with a fingerprint of its exact payloads.

    The approver needs the approve permission and, unless ``MIGRATION_FOUR_EYES`` is off,
    must be neither the batch's creator nor its last importer.
    """

    from customers.payload import payload_fingerprint

    if not user.has_perm("customers.approve_stagingbatch"):
        raise NotPermitted(ERR_APPROVE_PERMISSION)
    batch.refresh_from_db()
    if not batch_may_approve(batch=batch, user=user):
        raise NotPermitted(ERR_APPROVE_OWN_BATCH % {"batch": batch.name})
    if batch.status != Status.VALIDATED:
        raise BatchStateError(
            ERR_APPROVE_NOT_VALIDATED
            % {"batch": batch.name, "status": batch.get_status_display().lower()},
            code="state",
        )
    with transaction.atomic():
        locked = StagingBatch.objects.select_for_update().get(pk=batch.pk)
        # The fingerprint is taken under the lock: no import can slip in between.
        fingerprint = payload_fingerprint(batch=locked)
        return batch_transition(
            batch=locked,
            to=Status.APPROVED,
            expected=(Status.VALIDATED,),
            approved_by=user,
            approved_at=timezone.now(),
            approval_fingerprint=fingerprint,
        )


def batch_reopen(*, batch: StagingBatch, user) -> StagingBatch:
    """Void a batch's approval (or validation) so it can be edited again."""
    if not (
        user.has_perm("customers.approve_stagingbatch")
        or user.has_perm("customers.import_stagingbatch")
    ):
        raise NotPermitted(ERR_REOPEN_PERMISSION)
    return batch_transition(
        batch=batch,
        to=Status.DRAFT,
        expected=(Status.APPROVED, Status.VALIDATED),
        approved_by=None,
        approved_at=None,
        approval_fingerprint="",
        validated_by=None,
        validated_at=None,
    )
