"""The top of a batch's page: where the batch is in its life (a step indicator), what its
problems still block, what comes next and who may do it (the four-eyes rule, as
``customers.services.batch_may_approve`` decides it), and the steps forward as buttons.

The step back (reopen) is shown apart, at the foot of the page: ``Step.is_backward``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from console.admin import Step
from customers.models import StagingBatch
from customers.selectors import (
    PROGRESS_STEPS,
    BatchProblemCounts,
    batch_problem_counts,
    batch_progress,
)
from customers.services import (
    batch_approvers,
    batch_last_validation,
    batch_may_approve,
    user_may_see_customers,
    validation_advice,
)
from customers.services.approval import APPROVE_PERMISSION
from customers.staging import grouped

Status = StagingBatch.Status

PROGRESS_LABELS = {
    "staged": _("Staged"),
    "validated": _("Validated"),
    "approved": _("Approved"),
    "submitted": _("Submitted"),
    # Not the customer outcome's "Sent": a word of its own, apart from "Submitted".
    "sent": pgettext_lazy("batch progress", "Sent"),
}
NEXT_IMPORT = _("Next: import the batch's files, customers first, then validate it.")
NEXT_VALIDATE = _("Next: validate the batch. Every customer is checked against Masivo's contract.")
NEXT_FIX = _("Next: fix or exclude the customers with problems, then validate the batch again.")
NEXT_APPROVE = _("Next: approve the batch. It is then frozen for submission.")
NEXT_APPROVE_OTHER = _("Next: another person approves the batch.")
NEXT_SUBMIT = _("Next: submit the batch to Masivo.")
NEXT_SUBMIT_OTHER = _("Next: someone allowed to submit batches submits it to Masivo.")
NEXT_SENDING = _("A job is sending the batch's customers: its page shows the progress.")
NEXT_SENT = _("Done: Masivo has every customer this batch was to send.")
FOUR_EYES_STAGER = _("You staged this batch, so another person must approve it (four-eyes rule).")
FOUR_EYES_WHO = _("Who can approve it: %(names)s.")
FOUR_EYES_NOBODY = _(
    "Nobody can approve it yet: an administrator must give the permission to approve "
    "batches to someone who did not stage it."
)
WAITING_FOR = _("Waiting for approval by one of: %(names)s.")


# The step forward that is the batch's next one, shown as the primary button (the others
# it offers, such as validating a validated batch again, are shown plainly).
NEXT_STEP = {Status.DRAFT: "validate", Status.VALIDATED: "approve", Status.APPROVED: "submit"}


@dataclass(frozen=True)
class ProgressStep:
    name: str
    label: str
    # "done", "current" or "todo".
    state: str


def progress_steps(progress: str) -> list[ProgressStep]:
    """The step indicator: every step of a batch's life, ``progress`` marked current."""
    current = PROGRESS_STEPS.index(progress)
    return [
        ProgressStep(
            name=name,
            label=str(PROGRESS_LABELS[name]),
            state="done" if index < current else "current" if index == current else "todo",
        )
        for index, name in enumerate(PROGRESS_STEPS)
    ]


def _problems_url(batch: StagingBatch, blocking: str) -> str:
    query = urlencode({"batch__id__exact": batch.pk, "blocking": blocking})
    return reverse("admin:customers_customerproblem_changelist") + "?" + query


def problem_notes(batch: StagingBatch, counts: BatchProblemCounts, *, with_links: bool) -> dict:
    """What the page says of the problems: a warning only while they block the batch, a
    neutral note for those of excluded customers; ``with_links``: each with a link to the
    problems (which quote customers' data: only for those who may see it)."""
    notes = {}
    if counts.blocking:
        notes["blocking"] = {
            "text": ngettext(
                "%(n)s problem keeps this batch from being validated (%(customers)s invalid "
                "customers to fix or exclude).",
                "%(n)s problems keep this batch from being validated (%(customers)s invalid "
                "customers to fix or exclude).",
                counts.blocking,
            )
            % {"n": grouped(counts.blocking), "customers": grouped(counts.invalid_customers)},
            "url": _problems_url(batch, "yes") if with_links else "",
        }
    if counts.excluded:
        notes["excluded"] = {
            "text": ngettext(
                "%(n)s problem belongs to customers excluded from the migration: they will "
                "not be sent.",
                "%(n)s problems belong to customers excluded from the migration: they will "
                "not be sent.",
                counts.excluded,
            )
            % {"n": grouped(counts.excluded)},
            "url": _problems_url(batch, "no") if with_links else "",
        }
    return notes


def _draft_next(batch: StagingBatch, counts: BatchProblemCounts) -> list[str]:
    if not batch.customer_count:
        return [str(NEXT_IMPORT)]
    if counts.blocking:
        return [str(NEXT_FIX)]
    if not batch.valid_count and batch.excluded_count >= batch.customer_count:
        # Nothing left to send: say why, as validation said it.
        return validation_advice(batch_last_validation(batch=batch))
    return [str(NEXT_VALIDATE)]


def next_lines(
    batch: StagingBatch, counts: BatchProblemCounts, progress: str, offered: set[str]
) -> list[str]:
    """What comes next for the batch, for a user offered the steps named ``offered``."""
    if batch.status == Status.DRAFT:
        return _draft_next(batch, counts)
    if batch.status == Status.VALIDATED:
        return [str(NEXT_APPROVE if "approve" in offered else NEXT_APPROVE_OTHER)]
    if batch.status == Status.APPROVED:
        return [str(NEXT_SUBMIT if "submit" in offered else NEXT_SUBMIT_OTHER)]
    return [str(NEXT_SENT if progress == "sent" else NEXT_SENDING)]


def four_eyes_lines(request: HttpRequest, batch: StagingBatch) -> list[str]:
    """Who must approve a batch not yet approved, said to those who cannot: its stagers
    (told why) and, once validated, whoever else is waiting."""
    if batch.status not in StagingBatch.EDITABLE_STATUSES or not batch.customer_count:
        return []
    user = request.user
    is_stager = not batch_may_approve(batch=batch, user=user)
    if not is_stager and (user.has_perm(APPROVE_PERMISSION) or batch.status == Status.DRAFT):
        return []
    names = ", ".join(approver.get_username() for approver in batch_approvers(batch=batch))
    lines = [str(FOUR_EYES_STAGER)] if is_stager else []
    if not names:
        lines.append(str(FOUR_EYES_NOBODY))
    elif is_stager:
        lines.append(str(FOUR_EYES_WHO % {"names": names}))
    else:
        lines.append(str(WAITING_FOR % {"names": names}))
    return [" ".join(lines)]


def workflow_context(request: HttpRequest, batch: StagingBatch, steps: list[Step]) -> dict:
    """The context of the page's top (``stagingbatch/workflow.html``) and of its foot's
    step back."""
    counts = batch_problem_counts(batch=batch)
    progress = batch_progress(batch=batch)
    offered = {step.name for step in steps}
    return {
        "progress_steps": progress_steps(progress),
        "problem_notes": problem_notes(
            batch, counts, with_links=user_may_see_customers(user=request.user)
        ),
        "next_lines": next_lines(batch, counts, progress, offered),
        "four_eyes_lines": four_eyes_lines(request, batch),
        "forward_steps": [step for step in steps if not step.is_backward],
        "primary_step": NEXT_STEP.get(batch.status, "") if batch.customer_count else "import",
        "backward_steps": [step for step in steps if step.is_backward],
        "progress_label": gettext("Progress of the batch"),
    }
