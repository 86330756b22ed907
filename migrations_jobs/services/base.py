"""What every job service shares: permissions, tunables, error messages, and the guards
through which every status change of a job or chunk goes."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from console.errors import StateConflict
from console.states import rows_transition
from migrations_jobs.models import ChunkAttempt, Endpoint, JobChunk, MigrationJob
from migrations_jobs.notifications import notify_job_finished

JobStatus = MigrationJob.Status
ChunkStatus = JobChunk.Status
AttemptOutcome = ChunkAttempt.Outcome

SUBMIT_PERMISSION = "customers.submit_stagingbatch"
CANCEL_PERMISSION = "migrations_jobs.cancel_migrationjob"
RETRY_PERMISSION = "migrations_jobs.retry_migrationjob"
# Sending a customer again is a decision of the same weight as approving a batch.
SEND_AGAIN_PERMISSION = "customers.approve_stagingbatch"

# One job_run execution claims and sends for at most this long, then hands over to a new
# task, so one job never holds a worker for long and other jobs get their turn.
RUN_BUDGET_S = 60.0
# Waits up to this long (pacing, a backoff about to end) are slept in the worker; longer
# ones end the task and schedule a new one with a countdown.
SLEEP_MAX_S = 1.5
# A wake-up task waits at most this long; a job that must wait longer (an hourly cap, a
# long Retry-After) is looked at again then. Keeps delayed messages short-lived.
WAKE_MAX_S = 600.0
# A wake-up task is due this long before the job's work is (less than SLEEP_MAX_S, so the
# run that wakes sleeps the rest in the worker).
WAKE_EARLY_S = 1.0
# Pause before claiming again when a due chunk was locked by a concurrent claim.
CLAIM_RETRY_S = 0.1
# Refusals that blame the body: the chunk is split until the refused customers are alone.
# Other refusals (401 after a refresh, 403, 404, ...) fail the chunk as it is.
SPLIT_STATUS_CODES = frozenset({400, 409, 422})
ERROR_CHARS = 2000

ERR_SUBMIT_PERMISSION = _("You do not have permission to submit batches to Masivo.")
ERR_CANCEL_PERMISSION = _("You do not have permission to cancel migration jobs.")
ERR_RETRY_PERMISSION = _("You do not have permission to retry or resume migration jobs.")
ERR_NOT_APPROVED = _("Batch “%(batch)s” is %(status)s: only an approved batch can be submitted.")
ERR_CHANGED_SINCE_APPROVAL = _(
    "Batch “%(batch)s” changed after it was approved: reopen it, validate it and approve "
    "it again before submitting."
)
ERR_NOTHING_TO_SEND = _("Batch “%(batch)s” has no valid, included customer to send.")
ERR_JOB_TRANSITION = _("Job #%(job)s is %(status)s and cannot become %(target)s.")
ERR_NOTHING_TO_RETRY = _("Job #%(job)s has no failed chunk to retry.")
ERR_RETRY_CANNOT_HELP = _(
    "Job #%(job)s has no failed chunk that a retry may send: Masivo refused each of them for "
    "good (for example as invalid), so sending them again cannot succeed. Fix those customers "
    "and send them in a new batch."
)
ERR_NOT_RESUMABLE = _("Job #%(job)s is %(status)s: only a queued or running job can resume.")
ERR_NOTHING_HELD = _("Job #%(job)s has no chunk waiting for a decision.")
ERR_SEND_AGAIN_PERMISSION = _(
    "You do not have permission to send customers again: it takes the permission to "
    "approve batches."
)
ERR_SEND_AGAIN_REASON = _("Say why these customers must be sent again: the reason is recorded.")
ERR_SEND_AGAIN_APPROVED = _(
    "Batch “%(batch)s” is approved, so its customers are frozen. Submit it and send them "
    "again from its job, or reopen it first."
)
ERR_SEND_AGAIN_NONE = _(
    "None of the chosen customers of batch “%(batch)s” can be sent again: only customers "
    "sent or skipped by a job that was not cancelled can."
)

# Recorded on chunks and customers (data, not interface text: not translated).
ERR_LEASE_EXPIRED = (
    "The worker sending this chunk stopped before Masivo's answer was recorded; "
    "the request may have reached Masivo."
)
ERR_GAVE_UP = "Gave up after %(attempts)d attempts. Last error: %(error)s"
ERR_CANCELLED = "The job was cancelled before this chunk was sent."
ERR_HELD = (
    "Outcome unknown: Masivo may or may not have these customers (%(error)s). Held for an "
    "operator: check Masivo, then mark the chunk arrived or send it again."
)

# Written with every move out of ``sending``: the chunk belongs to no worker any more.
LEASE_CLEARED = {
    "lease_owner": "",
    "lease_expires_at": None,
    "request_started_at": None,
    "request_left_at": None,
}


class JobStateError(StateConflict):
    """The job is not in a state that allows what was asked."""


def job_transition(*, pk: int, to: str, expected: tuple[str, ...] | None = None, **fields) -> bool:
    """Move job ``pk`` to ``to`` if its status allows it (and is one of ``expected``), in
    one conditional UPDATE that also writes ``fields``. True when it moved; a job that
    moved to an end is announced once the transaction commits."""
    moved = bool(
        rows_transition(
            MigrationJob.objects.filter(pk=pk),
            transitions=MigrationJob.TRANSITIONS,
            to=to,
            expected=expected,
            **fields,
        )
    )
    if moved and to in MigrationJob.TERMINAL_STATUSES:
        transaction.on_commit(lambda: notify_job_finished(job_id=pk), robust=True)
    return moved


def chunks_transition(*, chunks: QuerySet[JobChunk], to: str, **fields) -> int:
    """Move the chunks of ``chunks`` whose status allows it to ``to``, in one conditional
    UPDATE that also writes ``fields``; ``chunks`` carries any further guard (the lease's
    owner and version). Returns how many moved."""
    return rows_transition(chunks, transitions=JobChunk.TRANSITIONS, to=to, **fields)


def transition_error(*, job: MigrationJob, to: str) -> JobStateError:
    return JobStateError(
        ERR_JOB_TRANSITION
        % {
            "job": job.pk,
            "status": job.get_status_display().lower(),
            "target": JobStatus(to).label.lower(),
        },
        code="state",
    )


def max_in_flight() -> int:
    return max(1, int(settings.MIGRATION_MAX_IN_FLIGHT))


def holds_unknown_outcomes(endpoint: str = Endpoint.CUSTOMERS) -> bool:
    """True when a chunk for ``endpoint`` whose outcome is unknown waits for an operator
    instead of being sent again: always for transactions (Masivo takes them once),
    otherwise when ``MIGRATION_UNKNOWN_OUTCOME = hold``."""
    return endpoint == Endpoint.TRANSACTIONS or settings.MIGRATION_UNKNOWN_OUTCOME == "hold"
