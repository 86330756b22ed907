"""The operators' actions on a job: cancel, decide on held chunks, retry failed chunks,
resume. On the job's page each is a step (``console.admin``): a POST from a confirmation
page that says what will happen; on the history they are bulk actions gated by their
permissions. Both call the services."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from console.admin import Step, StepsMixin
from console.errors import error_text
from migrations_jobs import services
from migrations_jobs.models import JobChunk, MigrationJob
from migrations_jobs.selectors import (
    configured_pace,
    job_failed_chunk_counts,
    job_is_stalled,
    job_progress,
    job_retryable_chunks,
    pace_duration_s,
)
from migrations_jobs.templatetags.console_jobs import duration_text, grouped

JobStatus = MigrationJob.Status
ChunkStatus = JobChunk.Status

JOB_STEPS = [
    Step(
        "cancel",
        _("Cancel job"),
        services.CANCEL_PERMISSION,
        (*MigrationJob.ACTIVE_STATUSES, JobStatus.HELD),
        _("Cancel job #%(job)s of batch “%(batch)s”?"),
        _("Yes, cancel the job"),
        is_danger=True,
    ),
    Step(
        "held-arrived",
        _("Held chunks are in Masivo"),
        services.RETRY_PERMISSION,
        (JobStatus.HELD,),
        _("Count the held chunks of job #%(job)s of batch “%(batch)s” as arrived?"),
        _("Yes, they are in Masivo"),
    ),
    Step(
        "held-send-again",
        _("Send held chunks again"),
        services.RETRY_PERMISSION,
        (JobStatus.HELD,),
        _("Send the held chunks of job #%(job)s of batch “%(batch)s” again?"),
        _("Yes, send them again"),
    ),
    Step(
        "retry-failed",
        _("Retry failed chunks"),
        services.RETRY_PERMISSION,
        (JobStatus.RUNNING, JobStatus.HELD, JobStatus.PARTIALLY_FAILED, JobStatus.FAILED),
        _("Retry the failed chunks of job #%(job)s of batch “%(batch)s”?"),
        _("Yes, send them again"),
    ),
    Step(
        "resume",
        _("Resume"),
        services.RETRY_PERMISSION,
        MigrationJob.ACTIVE_STATUSES,
        _("Resume job #%(job)s of batch “%(batch)s”?"),
        _("Yes, resume the job"),
    ),
]

MSG_CANCELLED = _("Job #%(job)s is cancelled: no new request starts.")
MSG_HELD_ARRIVED = _("The held chunks of job #%(job)s count as sent.")
MSG_HELD_SENT_AGAIN = _("The held chunks of job #%(job)s are queued to be sent again.")
MSG_RETRIED = _("The failed chunks of job #%(job)s are queued to be sent again.")
MSG_RESUMED = _("Job #%(job)s is resumed: a worker picks it up.")


def _run_action(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[MigrationJob],
    *,
    service,
    done_message: str,
) -> None:
    done = 0
    for job in queryset:
        try:
            service(job=job, user=request.user)
        except (ValidationError, PermissionDenied) as error:
            modeladmin.message_user(request, error_text(error), messages.ERROR)
        else:
            done += 1
    if done:
        modeladmin.message_user(request, done_message % {"count": done}, messages.SUCCESS)


class JobActionsMixin(StepsMixin):
    """The actions, for ``MigrationJobAdmin``: steps on the job's page (``StepsMixin``)
    and bulk actions on the history."""

    steps = JOB_STEPS
    step_url_part = "action"

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.CANCEL_PERMISSION)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.RETRY_PERMISSION)

    @admin.action(permissions=["cancel"], description=_("Cancel selected jobs"))
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[MigrationJob]) -> None:
        _run_action(
            self,
            request,
            queryset,
            service=services.job_cancel,
            done_message=_("%(count)d job(s) cancelled."),
        )

    @admin.action(permissions=["retry"], description=_("Retry failed chunks of selected jobs"))
    def retry_failed_chunks(self, request: HttpRequest, queryset: QuerySet[MigrationJob]) -> None:
        _run_action(
            self,
            request,
            queryset,
            service=services.job_retry_failed,
            done_message=_("Failed chunks of %(count)d job(s) sent again."),
        )

    @admin.action(permissions=["retry"], description=_("Resume selected jobs"))
    def resume_jobs(self, request: HttpRequest, queryset: QuerySet[MigrationJob]) -> None:
        _run_action(
            self,
            request,
            queryset,
            service=services.job_resume,
            done_message=_("%(count)d job(s) resumed."),
        )

    # --- the steps ------------------------------------------------------------------------

    def step_values(self, job: MigrationJob) -> dict:
        return {
            "object": gettext("job #%(job)s") % {"job": job.pk},
            "job": job.pk,
            "batch": job.batch.name,
        }

    def step_is_allowed(self, request: HttpRequest, job: MigrationJob, step: Step) -> bool:
        """Retry: only when some failed chunk may succeed if sent again. Resume: only when
        the job has work that no live worker holds (``services.job_needs_resume``)."""
        if step.name == "retry-failed":
            return job_retryable_chunks(job=job)[0] > 0
        if step.name == "resume":
            return services.job_needs_resume(job=job)
        return True

    def _done(self, service, request: HttpRequest, job: MigrationJob, message: str):
        service(job=job, user=request.user)
        return messages.SUCCESS, message % {"job": job.pk}

    def run_cancel(self, request: HttpRequest, job: MigrationJob):
        return self._done(services.job_cancel, request, job, MSG_CANCELLED)

    def run_held_arrived(self, request: HttpRequest, job: MigrationJob):
        return self._done(services.job_held_mark_arrived, request, job, MSG_HELD_ARRIVED)

    def run_held_send_again(self, request: HttpRequest, job: MigrationJob):
        return self._done(services.job_held_resend, request, job, MSG_HELD_SENT_AGAIN)

    def run_retry_failed(self, request: HttpRequest, job: MigrationJob):
        return self._done(services.job_retry_failed, request, job, MSG_RETRIED)

    def run_resume(self, request: HttpRequest, job: MigrationJob):
        return self._done(services.job_resume, request, job, MSG_RESUMED)

    def describe_cancel(self, job: MigrationJob) -> list[str]:
        chunks = job_progress(job=job)["chunks"]
        pending, sending = chunks[ChunkStatus.PENDING], chunks[ChunkStatus.SENDING]
        left = max(0, job.total_customers - job.sent_customers - job.failed_customers)
        return [
            gettext("No new request starts.")
            + " "
            + ngettext(
                "%(n)s pending chunk is cancelled.", "%(n)s pending chunks are cancelled.", pending
            )
            % {"n": grouped(pending)}
            + " "
            + ngettext(
                "%(n)s request already on its way finishes and is recorded.",
                "%(n)s requests already on their way finish and are recorded.",
                sending,
            )
            % {"n": grouped(sending)},
            gettext("So far %(sent)s of %(total)s customers are sent; %(left)s are not sent yet.")
            % {
                "sent": grouped(job.sent_customers),
                "total": grouped(job.total_customers),
                "left": grouped(left),
            },
            gettext("Cancelling is final: a cancelled job cannot be resumed or retried."),
        ]

    def describe_retry_failed(self, job: MigrationJob) -> list[str]:
        retryable_chunks, retryable_customers = job_retryable_chunks(job=job)
        interval, cap = configured_pace()
        duration = pace_duration_s(requests=retryable_chunks, interval_s=interval, hourly_cap=cap)
        lines = [
            ngettext(
                "%(chunks)s failed chunk with %(customers)s customers is sent again as a new "
                "chunk.",
                "%(chunks)s failed chunks with %(customers)s customers are sent again, each as "
                "a new chunk.",
                retryable_chunks,
            )
            % {"chunks": grouped(retryable_chunks), "customers": grouped(retryable_customers)}
            + " "
            + gettext("Those customers count as not sent until Masivo answers."),
        ]
        if duration is not None:
            lines.append(
                gettext("At the configured pace that takes about %(duration)s.")
                % {"duration": duration_text(duration)}
            )
        if job.status != JobStatus.RUNNING:
            lines.append(gettext("The job becomes running again until they are answered."))
        refused = job_failed_chunk_counts(job=job)["refused"]
        if refused:
            lines.append(
                ngettext(
                    "%(n)s chunk that Masivo refused for good stays failed: sending it again "
                    "cannot succeed.",
                    "%(n)s chunks that Masivo refused for good stay failed: sending them again "
                    "cannot succeed.",
                    refused,
                )
                % {"n": grouped(refused)}
            )
        return lines

    def _held_line(self, job: MigrationJob) -> str:
        held = JobChunk.objects.filter(job=job, status=ChunkStatus.HELD)
        chunks, customers = held.count(), sum(held.values_list("customer_count", flat=True))
        return ngettext(
            "%(chunks)s chunk with %(customers)s customers has an unknown outcome: its request "
            "may or may not have reached Masivo.",
            "%(chunks)s chunks with %(customers)s customers have an unknown outcome: their "
            "requests may or may not have reached Masivo.",
            chunks,
        ) % {"chunks": grouped(chunks), "customers": grouped(customers)}

    def describe_held_arrived(self, job: MigrationJob) -> list[str]:
        return [
            self._held_line(job),
            gettext(
                "Choose this after finding those customers in Masivo's dashboard: they count "
                "as sent, nothing is sent again, and the job ends."
            ),
        ]

    def describe_held_send_again(self, job: MigrationJob) -> list[str]:
        return [
            self._held_line(job),
            gettext(
                "Choose this after checking that those customers are not in Masivo: they are "
                "sent again. If some did arrive, they arrive twice, and are marked so."
            ),
        ]

    def describe_resume(self, job: MigrationJob) -> list[str]:
        now = timezone.now()
        lines = [
            gettext(
                "Chunks whose worker stopped before Masivo answered go back to pending, and "
                "the job is handed to the workers again."
            )
        ]
        last_seen = job.heartbeat_at or job.started_at or job.created_at
        ago = duration_text((now - last_seen).total_seconds())
        if job_is_stalled(job=job, now=now, stall_s=float(settings.MIGRATION_LEASE_S)):
            lines.append(
                gettext("No worker has worked on this job for %(ago)s: it looks stalled.")
                % {"ago": ago}
            )
        else:
            lines.append(
                gettext(
                    "A worker worked on this job %(ago)s ago, so it does not look stalled. "
                    "Resuming does no harm, but is only needed when its worker died."
                )
                % {"ago": ago}
            )
        return lines
