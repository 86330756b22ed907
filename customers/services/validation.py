"""Validating a batch against the contract, and the operator's exclude / send-again choices.

``batch_validate`` records what is wrong with every customer (``problems``) and moves the
batch to ``validated`` or back to ``draft``. Ticking "send again" for a customer that
validation excluded because another batch had sent it includes it back, as long as its
exclusion is still the automatic one (an operator's own exclusion, with their reason, is
kept).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, ngettext_lazy

from console.errors import InvalidInput
from console.types import Operator
from customers.contract import customer_checker
from customers.contract.revision import contract_revision
from customers.models import CustomerProblem, StagedCustomer, StagingBatch
from customers.payload.history import HISTORY_KINDS
from customers.services.batches import batch_frozen_error, batch_mark_edited, batch_transition
from customers.services.entries import (
    entries_rechecked,
    entries_record,
    validation_entries_known,
)
from customers.services.history import history_problems_record
from customers.services.problems import (
    REASON_MAX,
    batch_problems_record,
    chunked,
    customers_auto_excluded,
)

logger = logging.getLogger(__name__)

Status = StagingBatch.Status
Code = CustomerProblem.Code

ERR_VALIDATE_STATE = _(
    "Batch “%(batch)s” is %(status)s: only a draft or validated batch can be validated. "
    "Reopen it first."
)
ERR_VALIDATE_SUBMITTED = _(
    "Batch “%(batch)s” is submitted: it was validated before it was submitted, and a "
    "submitted batch cannot be reopened. Stage its files into a new batch to validate them "
    "again."
)
# What the operator reads after validating: the counts, then what to do next.
MSG_COUNTS = _("Validation: %(valid)s valid, %(invalid)s invalid, %(excluded)s excluded.")
MSG_VALIDATED = _("The batch is validated.")
MSG_FIX_INVALID = _("Fix or exclude the invalid customers, then validate again.")
MSG_CHILDREN_ELSEWHERE = ngettext_lazy(
    "%(n)s balance, device or metric row belongs to a customer of another batch: delete "
    "it, or stage its customer in this batch, then validate again.",
    "%(n)s balance, device or metric rows belong to customers of other batches: delete "
    "them, or stage their customers in this batch, then validate again.",
    "n",
)
MSG_HISTORY_UNATTACHED = ngettext_lazy(
    "%(n)s problem of history concerns a customer not staged in this batch: see the "
    "problems, fix or delete those rows, then validate again.",
    "%(n)s problems of history concern customers not staged in this batch: see the "
    "problems, fix or delete those rows, then validate again.",
    "n",
)
MSG_ALL_SENT_ELSEWHERE = _(
    "Nothing is left to send: every customer of this batch was already sent to Masivo by "
    "%(batches)s, so they are excluded. Tick “send again” on the customers you mean to "
    "send anyway, then validate again."
)
MSG_SOME_SENT_ELSEWHERE = ngettext_lazy(
    "%(n)s customer was already sent to Masivo by %(batches)s and is excluded.",
    "%(n)s customers were already sent to Masivo by %(batches)s and are excluded.",
    "n",
)
MSG_NOTHING_TO_SEND = _(
    "Nothing is left to send: every customer of this batch is excluded. Include the "
    "customers to send, then validate again."
)
MSG_NO_CUSTOMERS = _("The batch has no customers yet: import a customers file, then validate it.")
ERR_REASON_TOO_LONG = _("Keep the exclusion reason to %(max)d characters at most.")


@dataclass(frozen=True)
class ValidationSummary:
    valid: int
    invalid: int
    excluded: int
    problem_count: int
    status: str
    # What explains the counts (left out of comparisons: the counts are the summary).
    # Customers excluded because another batch sent them: (that batch's name, how many).
    sent_elsewhere: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    # Balances, devices and metrics staged here whose customer is in another batch.
    children_elsewhere: int = field(default=0, compare=False)
    # Problems of history whose customer is not staged here (unsent, or its rows wrong).
    history_unattached: int = field(default=0, compare=False)

    @property
    def is_validated(self) -> bool:
        return self.status == Status.VALIDATED

    @property
    def sent_elsewhere_count(self) -> int:
        return sum(n for _name, n in self.sent_elsewhere)


def _batches_named(names: list[str]) -> str:
    """``batch “a”`` or ``batches “a”, “b”``."""
    quoted = ", ".join(f"“{name}”" for name in names)
    return ngettext("batch %(names)s", "batches %(names)s", len(names)) % {"names": quoted}


def validation_advice(summary: ValidationSummary) -> list[str]:
    """What to do after a validation, in the words its outcome calls for: why the batch is
    not validated (invalid customers, rows of other batches' customers, nothing left to
    send and why), or that it is; and which customers other batches had already sent."""
    batches = _batches_named([name for name, _n in summary.sent_elsewhere])
    sent = summary.sent_elsewhere_count
    if summary.is_validated:
        lines = [str(MSG_VALIDATED)]
    elif summary.invalid or summary.children_elsewhere or summary.history_unattached:
        lines = [str(MSG_FIX_INVALID)] if summary.invalid else []
        if summary.children_elsewhere:
            lines.append(MSG_CHILDREN_ELSEWHERE % {"n": summary.children_elsewhere})
        if summary.history_unattached:
            lines.append(MSG_HISTORY_UNATTACHED % {"n": summary.history_unattached})
    elif not summary.excluded:
        return [str(MSG_NO_CUSTOMERS)]
    elif sent == summary.excluded:
        return [str(MSG_ALL_SENT_ELSEWHERE % {"batches": batches})]
    else:
        lines = [str(MSG_NOTHING_TO_SEND)]
    if sent:
        lines.append(MSG_SOME_SENT_ELSEWHERE % {"n": sent, "batches": batches})
    return lines


def validation_text(summary: ValidationSummary, *, grouped=str) -> str:
    """The counts of a validation and what to do next, as one message (``grouped``
    writes a number the reader's way)."""
    counts = MSG_COUNTS % {
        "valid": grouped(summary.valid),
        "invalid": grouped(summary.invalid),
        "excluded": grouped(summary.excluded),
    }
    return " ".join([str(counts), *validation_advice(summary)])


def batch_sent_elsewhere(batch: StagingBatch) -> tuple[tuple[str, int], ...]:
    """The batches that had sent customers of ``batch``, which validation excluded for it:
    (name, how many), by name."""
    rows = (
        CustomerProblem.objects.filter(
            batch=batch, code=Code.ALREADY_SENT, customer__is_excluded=True
        )
        .values_list("other_batch__name")
        .annotate(n=Count("pk"))
        .order_by("other_batch__name")
    )
    return tuple((name, n) for name, n in rows if name is not None)


def _store_counts(batch: StagingBatch) -> dict[str, int]:
    """Recount valid, invalid and excluded customers into the batch's counters."""
    counts = StagedCustomer.objects.filter(batch=batch).aggregate(
        valid=Count("pk", filter=Q(is_excluded=False, is_valid=True)),
        invalid=Count("pk", filter=Q(is_excluded=False, is_valid=False)),
        excluded=Count("pk", filter=Q(is_excluded=True)),
    )
    StagingBatch.objects.filter(pk=batch.pk).update(
        valid_count=counts["valid"],
        invalid_count=counts["invalid"],
        excluded_count=counts["excluded"],
    )
    return counts


def _validation_settle(*, batch: StagingBatch, is_ready: bool, user: Operator | None) -> None:
    """Move the locked ``batch`` to where its validation leaves it: ``validated`` (again,
    with the new validator) when ready, else back to ``draft``."""
    now = timezone.now()
    # The version the validation judged, with the validation's own writes counted.
    judged = F("content_version")
    if is_ready and batch.status == Status.DRAFT:
        batch_transition(
            pk=batch.pk,
            to=Status.VALIDATED,
            expected=(Status.DRAFT,),
            validated_at=now,
            validated_by=user,
            validated_version=judged,
        )
    elif is_ready:
        StagingBatch.objects.filter(pk=batch.pk).update(
            validated_at=now, validated_by=user, validated_version=judged, updated_at=now
        )
    elif batch.status == Status.VALIDATED:
        batch_transition(
            pk=batch.pk,
            to=Status.DRAFT,
            expected=(Status.VALIDATED,),
            validated_at=None,
            validated_by=None,
            validated_version=None,
        )


def batch_validate(
    *, batch: StagingBatch, user: Operator | None, progress=None
) -> ValidationSummary:
    """Check every customer of ``batch`` against the contract and record what is wrong.

    The batch becomes ``validated`` when no customer left to send is invalid and at least
    one will be sent; otherwise it is (or goes back to) ``draft``. Approved and submitted
    batches are refused. Runs in one transaction holding the batch's row lock, so an
    import or edit (which takes the same lock) waits rather than interleaves.
    """
    checker = customer_checker(strict=True)
    revision = contract_revision()
    with transaction.atomic():
        locked = StagingBatch.objects.select_for_update().get(pk=batch.pk)
        if not locked.is_editable:
            raise batch_frozen_error(
                batch=locked, reopenable=ERR_VALIDATE_STATE, final=ERR_VALIDATE_SUBMITTED
            )
        known = validation_entries_known(locked, revision)
        found = batch_problems_record(
            batch=locked,
            checker=checker,
            progress=progress,
            only=entries_rechecked(locked) if known else None,
        )
        problem_count, elsewhere = found.count, found.elsewhere
        history_count, history_unattached = history_problems_record(batch=locked)
        problem_count += history_count
        counts = _store_counts(locked)
        is_ready = (
            counts["invalid"] == 0
            and counts["valid"] > 0
            and elsewhere == 0
            and history_unattached == 0
        )
        _validation_settle(batch=locked, is_ready=is_ready, user=user)
        entries_record(batch=locked, revision=revision if found.refused == 0 else None)
        sent_elsewhere = batch_sent_elsewhere(locked)
    batch.refresh_from_db()
    logger.info(
        "Batch %s validated by %s: %d valid, %d invalid, %d excluded, %d problems.",
        batch.pk,
        user,
        counts["valid"],
        counts["invalid"],
        counts["excluded"],
        problem_count,
    )
    return ValidationSummary(
        valid=counts["valid"],
        invalid=counts["invalid"],
        excluded=counts["excluded"],
        problem_count=problem_count,
        status=batch.status,
        sent_elsewhere=sent_elsewhere,
        children_elsewhere=elsewhere,
        history_unattached=history_unattached,
    )


def batch_last_validation(*, batch: StagingBatch) -> ValidationSummary:
    """What the batch's last validation found, from the counters and problems it stored
    (an edit since then may have changed the customers it judged)."""
    unattached = batch.problems.filter(customer__isnull=True)
    return ValidationSummary(
        valid=batch.valid_count,
        invalid=batch.invalid_count,
        excluded=batch.excluded_count,
        problem_count=batch.problems.count(),
        status=batch.status,
        sent_elsewhere=batch_sent_elsewhere(batch),
        children_elsewhere=unattached.exclude(field__in=HISTORY_KINDS).count(),
        history_unattached=unattached.filter(field__in=HISTORY_KINDS).count(),
    )


def customers_set_excluded(
    *,
    batch: StagingBatch,
    customer_ids: list[int],
    excluded: bool,
    reason: str = "",
    user: Operator,
) -> int:
    """Exclude customers of ``batch`` from sending (or include them again).

    Refused for approved and submitted batches; a validated batch goes back to draft.
    Returns how many customers were updated (ids outside the batch are ignored).
    """
    reason = reason.strip() if excluded else ""
    if len(reason) > REASON_MAX:
        raise InvalidInput(ERR_REASON_TOO_LONG % {"max": REASON_MAX}, code="reason")
    updated = 0
    with transaction.atomic():
        locked = batch_mark_edited(batch=batch, user=user)
        for ids in chunked(list(customer_ids)):
            updated += StagedCustomer.objects.filter(batch=locked, pk__in=ids).update(
                is_excluded=excluded, exclusion_reason=reason
            )
        _store_counts(locked)
    batch.refresh_from_db()
    logger.info(
        "Batch %s: %d customers %s by %s.",
        batch.pk,
        updated,
        "excluded" if excluded else "included",
        user,
    )
    return updated


def customers_set_resend(
    *, batch: StagingBatch, customer_ids: list[int], resend: bool, user: Operator
) -> int:
    """Tick or untick "send again" for customers an earlier batch already sent.

    Ticking it includes back the customers validation had excluded for that reason; the
    next validation excludes them again if it is unticked. Refused for approved and
    submitted batches; a validated batch goes back to draft. Returns how many were updated.
    """
    updated = 0
    with transaction.atomic():
        locked = batch_mark_edited(batch=batch, user=user)
        for ids in chunked(list(customer_ids)):
            customers = StagedCustomer.objects.filter(batch=locked, pk__in=ids)
            updated += customers.update(resend=resend)
            if resend:
                included = customers_auto_excluded(locked, customer_ids=ids)
                customers.filter(pk__in=included).update(is_excluded=False, exclusion_reason="")
                CustomerProblem.objects.filter(
                    batch=locked, code=Code.ALREADY_SENT, customer_id__in=ids
                ).delete()
        _store_counts(locked)
    batch.refresh_from_db()
    logger.info(
        "Batch %s: send again %s for %d customers by %s.",
        batch.pk,
        "ticked" if resend else "unticked",
        updated,
        user,
    )
    return updated
