"""A batch's steps on its page: validate, approve, reopen (``console.admin.StepsMixin``).

Each step is offered in the statuses the model names for it, and runs one service; the
services own the rules (who may approve, what may be validated) and their refusals.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from console.admin import Step, StepsMixin
from customers.models import StagingBatch
from customers.selectors import batch_overlaps
from customers.services import (
    batch_approve,
    batch_may_approve,
    batch_reopen,
    batch_validate,
    validation_text,
)
from customers.staging import grouped

Status = StagingBatch.Status

BATCH_STEPS = [
    Step(
        "validate",
        _("Validate"),
        "customers.change_stagingbatch",
        StagingBatch.EDITABLE_STATUSES,
        _("Validate batch “%(batch)s”?"),
        _("Yes, validate the batch"),
    ),
    Step(
        "approve",
        _("Approve"),
        "customers.approve_stagingbatch",
        StagingBatch.APPROVABLE_STATUSES,
        _("Approve batch “%(batch)s”?"),
        _("Yes, approve the batch"),
    ),
    Step(
        "reopen",
        _("Reopen"),
        "customers.change_stagingbatch",
        StagingBatch.REOPENABLE_STATUSES,
        _("Reopen batch “%(batch)s”?"),
        _("Yes, reopen the batch"),
        is_danger=True,
        is_backward=True,
    ),
]


def overlap_lines(batch: StagingBatch) -> list[str]:
    """What a confirmation page says of the other batches, approved or submitted, that
    hold customers this batch would send: how it works once, then how many, which batch,
    and a link to them, one line per batch."""
    overlaps = batch_overlaps(batch=batch)
    if not overlaps:
        return []
    lines = [
        gettext(
            "Some customers of this batch are also in other batches that are approved or "
            "submitted. The console sends a customer once: whichever job reaches it first "
            "sends it, and the other job skips it. Nothing is refused."
        )
    ]
    for overlap in overlaps:
        url = (
            reverse("admin:customers_stagedcustomer_changelist")
            + "?"
            + urlencode({"batch__id__exact": batch.pk, "also_in": overlap.batch_id})
        )
        values = {
            "n": grouped(overlap.customers),
            "other": overlap.name,
            "status": Status(overlap.status).label.lower(),
        }
        text = ngettext(
            "%(n)s customer is also in batch “%(other)s” (%(status)s).",
            "%(n)s customers are also in batch “%(other)s” (%(status)s).",
            overlap.customers,
        )
        lines.append(
            format_html(
                '<span class="console-overlap">{}</span> <a href="{}">{}</a>',
                text % values,
                url,
                gettext("See the customers also in “%(other)s”") % values,
            )
        )
    return lines


class BatchStepsMixin(StepsMixin):
    """The steps of a batch's page: what each confirmation page says and what it runs."""

    steps = BATCH_STEPS

    def step_values(self, batch: StagingBatch) -> dict:
        return {"object": gettext("batch “%(batch)s”") % {"batch": batch.name}, "batch": batch.name}

    def step_is_allowed(self, request: HttpRequest, batch: StagingBatch, step: Step) -> bool:
        return step.name != "approve" or batch_may_approve(batch=batch, user=request.user)

    def describe_validate(self, batch: StagingBatch) -> list[str]:
        return [
            _(
                "Every one of the %(n)s staged customers will be checked against Masivo's "
                "contract, and against each other (duplicate emails) and earlier batches "
                "(customers already sent)."
            )
            % {"n": grouped(batch.customer_count)},
            _(
                "Problems are listed by customer and field. The batch becomes validated only "
                "when no invalid customer is left unexcluded."
            ),
        ]

    def run_validate(self, request, batch):
        summary = batch_validate(batch=batch, user=request.user)
        level = messages.SUCCESS if summary.is_validated else messages.WARNING
        return level, validation_text(summary, grouped=grouped)

    def describe_approve(self, batch: StagingBatch) -> list[str]:
        return [
            _(
                "%(valid)s customers will be frozen for submission (%(excluded)s excluded). "
                "No file can be imported and no row edited until the batch is reopened."
            )
            % {"valid": grouped(batch.valid_count), "excluded": grouped(batch.excluded_count)},
            _(
                "Your approval records the version of the batch's data: if any row changes "
                "afterwards, however it is changed, the batch cannot be submitted until it "
                "is validated and approved again."
            ),
            *overlap_lines(batch),
        ]

    def run_approve(self, request, batch):
        batch_approve(batch=batch, user=request.user)
        return messages.SUCCESS, _("Batch “%(batch)s” is approved.") % {"batch": batch.name}

    def describe_reopen(self, batch: StagingBatch) -> list[str]:
        return [
            _(
                "The batch goes back to draft: its validation and approval are voided, and "
                "it must be validated and approved again before it can be submitted."
            )
        ]

    def run_reopen(self, request, batch):
        batch_reopen(batch=batch, user=request.user)
        return messages.SUCCESS, _("Batch “%(batch)s” is a draft again.") % {"batch": batch.name}
