"""Approving a batch, under the four-eyes rule.

A batch's stagers are everyone who put data into it: its creator, its last importer and
everyone recorded in ``StagingBatch.stagers`` (each importer, each editor of its rows,
whoever confirmed a file staged in the background).
Unless ``MIGRATION_FOUR_EYES`` is off, none of them may approve it.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from console.errors import NotPermitted
from console.types import Operator
from customers.models import StagingBatch
from customers.services.batches import BatchStateError, batch_state_error, batch_transition

Status = StagingBatch.Status
APPROVE_PERMISSION = "customers.approve_stagingbatch"
# How many possible approvers a batch's page names.
APPROVERS_NAMED = 10

ERR_APPROVE_PERMISSION = _("You do not have permission to approve batches.")
ERR_APPROVE_OWN_BATCH = _(
    "Four-eyes rule: batch “%(batch)s” must be approved by someone other than the people "
    "who created it, imported into it or changed its rows."
)
ERR_APPROVE_CHANGED = _(
    "Batch “%(batch)s” changed after it was validated: validate it again before approving it."
)
ERR_APPROVE_NOT_VALIDATED = _(
    "Batch “%(batch)s” is %(status)s: only a validated batch can be approved. Validate it first."
)


def batch_is_staged_by(*, batch: StagingBatch, user: Operator) -> bool:
    """Whether ``user`` is one of the batch's stagers: its creator, its last importer, or
    anyone recorded in ``batch.stagers`` (who imported into it or changed its rows)."""
    return user.pk in (batch.created_by_id, batch.last_imported_by_id) or (
        batch.stagers.filter(pk=user.pk).exists()
    )


def batch_may_approve(*, batch: StagingBatch, user: Operator) -> bool:
    """The four-eyes rule: unless ``MIGRATION_FOUR_EYES`` is off, none of the batch's
    stagers may approve it. (The approve permission is checked apart.)"""
    return not (settings.MIGRATION_FOUR_EYES and batch_is_staged_by(batch=batch, user=user))


def batch_approvers(*, batch: StagingBatch, limit: int = APPROVERS_NAMED) -> list[Operator]:
    """Who could approve ``batch``: active users holding the approve permission (directly,
    through a group, or as superusers) whom the four-eyes rule (``batch_may_approve``)
    lets approve it, by username, at most ``limit`` of them."""
    User = get_user_model()
    holders = User.objects.with_perm(APPROVE_PERMISSION, is_active=True).order_by(
        User.USERNAME_FIELD
    )
    found: list[Operator] = []
    for user in holders.iterator():
        if batch_may_approve(batch=batch, user=user):
            found.append(user)
            if len(found) >= limit:
                break
    return found


def batch_approve(*, batch: StagingBatch, user: Operator) -> StagingBatch:
    """Approve a validated batch, freezing the version of its staged data that validation
    judged (``customers.versioning``): submission refuses it unless that version holds.

    The approver needs the approve permission and, unless ``MIGRATION_FOUR_EYES`` is off,
    must not be one of the batch's stagers (``batch_is_staged_by``). A batch whose rows
    changed since validation by a door that does not move it back to draft (SQL, a shell)
    is refused: approval never covers rows that no validation saw.
    """
    if not user.has_perm(APPROVE_PERMISSION):
        raise NotPermitted(ERR_APPROVE_PERMISSION)
    batch.refresh_from_db()
    if not batch_may_approve(batch=batch, user=user):
        raise NotPermitted(ERR_APPROVE_OWN_BATCH % {"batch": batch.name})
    with transaction.atomic():
        locked = StagingBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status not in StagingBatch.APPROVABLE_STATUSES:
            raise batch_state_error(ERR_APPROVE_NOT_VALIDATED, batch=locked)
        if locked.content_version != locked.validated_version:
            raise BatchStateError(ERR_APPROVE_CHANGED % {"batch": locked.name}, code="changed")
        # Under the lock: an import or edit takes the same lock, and any other write to
        # the staged rows moves the version that submission compares.
        batch_transition(
            pk=locked.pk,
            to=Status.APPROVED,
            approved_by=user,
            approved_at=timezone.now(),
            approved_version=locked.content_version,
        )
    batch.refresh_from_db()
    return batch
