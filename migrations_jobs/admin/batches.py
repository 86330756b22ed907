"""The batch page, extended by the jobs app: the submit step, what Masivo made of the
batch's customers, and the batch's jobs.

The customers app's ``StagingBatchAdmin`` is unregistered and registered again as the
subclass below, so that the customers app never needs to know about jobs.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from console.admin import Step
from customers.admin.batches import StagingBatchAdmin
from customers.admin.steps import BATCH_STEPS, overlap_lines
from customers.contract import MAX_CUSTOMERS_PER_REQUEST
from customers.models import Outcome, StagingBatch
from customers.services import user_may_see_customers
from migrations_jobs import services
from migrations_jobs.client import redact
from migrations_jobs.models import MigrationJob
from migrations_jobs.selectors import (
    HOUR_S,
    batch_outcome_counts,
    batch_sendable_count,
    configured_pace,
    jobs_active_count,
    pace_duration_s,
    pace_hourly_cap_binds,
)
from migrations_jobs.templatetags.console_jobs import (
    duration_text,
    grouped,
    job_progress_bar,
    status_badge,
)

BatchStatus = StagingBatch.Status
VIEW_JOB = "migrations_jobs.view_migrationjob"

SUBMIT_STEP = Step(
    "submit",
    _("Submit to Masivo"),
    services.SUBMIT_PERMISSION,
    (BatchStatus.APPROVED,),
    _("Submit batch “%(batch)s” to Masivo?"),
    _("Yes, submit the batch to Masivo"),
)


def pace_text(*, interval_s: float, hourly_cap: int) -> str:
    """The configured pace in words."""
    interval = f"{interval_s:g}"
    if interval_s and hourly_cap:
        return gettext("one request every %(interval)s seconds, at most %(cap)s an hour") % {
            "interval": interval,
            "cap": grouped(hourly_cap),
        }
    if interval_s:
        return gettext("one request every %(interval)s seconds") % {"interval": interval}
    return gettext("at most %(cap)s requests an hour") % {"cap": grouped(hourly_cap)}


def amount_text(*, customers: int, requests: int) -> str:
    """ "2,340 customers in 3 requests"."""
    return gettext("%(customers)s in %(requests)s") % {
        "customers": ngettext("%(n)s customer", "%(n)s customers", customers)
        % {"n": grouped(customers)},
        "requests": ngettext("%(n)s request", "%(n)s requests", requests)
        % {"n": grouped(requests)},
    }


def submit_estimate_lines(*, customers: int, chunk_size: int) -> list[str]:
    """What sending ``customers`` in requests of ``chunk_size`` takes at the configured pace."""
    requests = math.ceil(customers / chunk_size) if customers else 0
    interval, cap = configured_pace()
    duration = pace_duration_s(requests=requests, interval_s=interval, hourly_cap=cap)
    amount = amount_text(customers=customers, requests=requests)
    if duration is None:
        return [
            gettext(
                "%(amount)s; no pace is configured, so requests leave as fast as Masivo "
                "answers them."
            )
            % {"amount": amount}
        ]
    lines = [
        gettext("%(amount)s; at the configured pace (%(pace)s) about %(duration)s.")
        % {
            "amount": amount,
            "pace": pace_text(interval_s=interval, hourly_cap=cap),
            "duration": duration_text(duration),
        }
    ]
    if pace_hourly_cap_binds(requests=requests, interval_s=interval, hourly_cap=cap):
        hours = int(duration // HOUR_S)
        lines.append(
            gettext(
                "The hourly cap sets the pace: Masivo takes at most %(cap)s requests an hour, "
                "so these %(requests)s requests take %(over)s."
            )
            % {
                "cap": grouped(cap),
                "requests": grouped(requests),
                "over": ngettext("over an hour", "over %(n)s hours", hours) % {"n": hours},
            }
        )
    return lines


admin.site.unregister(StagingBatch)


@admin.register(StagingBatch)
class SubmittableBatchAdmin(StagingBatchAdmin):
    steps = [*BATCH_STEPS, SUBMIT_STEP]
    sending_fields = (
        "sent_customers_link",
        "skipped_customers_link",
        "failed_customers_link",
        "not_sent_customers_link",
    )

    class Media:
        css = {"all": ("console_jobs/console.css",)}

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and obj.status == BatchStatus.SUBMITTED:
            # The counts link to the customers only for whoever may see them.
            obj.may_see_customers = user_may_see_customers(user=request.user)
            fields = list(self.sending_fields)
            if request.user.has_perm(VIEW_JOB):
                fields.append("jobs_list")
            fieldsets.append((_("Sent to Masivo"), {"fields": fields}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *self.sending_fields, "jobs_list"]

    # --- what Masivo made of the batch -----------------------------------------------------

    def _outcomes(self, batch: StagingBatch) -> dict[str, int]:
        # Computed once per page for the three counts below.
        if getattr(batch, "outcome_counts", None) is None:
            batch.outcome_counts = batch_outcome_counts(batch=batch)
        return batch.outcome_counts

    def _customers_link(self, batch: StagingBatch, outcome: str) -> str:
        count = self._outcomes(batch)[outcome]
        if not getattr(batch, "may_see_customers", False):
            return format_html(
                '<span class="console-count console-count-{}">{}</span>', outcome, grouped(count)
            )
        url = (
            reverse("admin:customers_stagedcustomer_changelist")
            + "?"
            + urlencode(
                {
                    "batch__id__exact": batch.pk,
                    "outcome__exact": outcome,
                    "is_valid__exact": 1,
                    "is_excluded__exact": 0,
                }
            )
        )
        return format_html(
            '<a href="{}" class="console-count console-count-{}">{}</a>',
            url,
            outcome,
            grouped(count),
        )

    @admin.display(description=_("customers sent"))
    def sent_customers_link(self, batch: StagingBatch) -> str:
        return self._customers_link(batch, Outcome.SENT)

    @admin.display(description=_("customers skipped (sent by another batch)"))
    def skipped_customers_link(self, batch: StagingBatch) -> str:
        return self._customers_link(batch, Outcome.SKIPPED)

    @admin.display(description=_("customers failed"))
    def failed_customers_link(self, batch: StagingBatch) -> str:
        return self._customers_link(batch, Outcome.FAILED)

    @admin.display(description=_("customers not sent"))
    def not_sent_customers_link(self, batch: StagingBatch) -> str:
        return self._customers_link(batch, Outcome.NOT_SENT)

    @admin.display(description=_("jobs"))
    def jobs_list(self, batch: StagingBatch) -> str:
        jobs = list(
            MigrationJob.objects.filter(batch=batch).select_related("started_by").order_by("-pk")
        )
        if not jobs:
            return gettext("None yet.")
        rows = format_html_join(
            "",
            '<li><a href="{}">{}</a> {} {} <span class="quiet">{}</span></li>',
            (
                (
                    reverse("admin:migrations_jobs_migrationjob_change", args=[job.pk]),
                    str(job),
                    status_badge(job.status, job.get_status_display()),
                    job_progress_bar(job),
                    gettext("started %(when)s by %(user)s")
                    % {
                        "when": localize(timezone.localtime(job.started_at or job.created_at)),
                        "user": job.started_by,
                    },
                )
                for job in jobs
            ),
        )
        history = (
            reverse("admin:migrations_jobs_migrationjob_changelist")
            + "?"
            + urlencode({"batch__id__exact": batch.pk})
        )
        return format_html(
            '<ul class="console-job-list">{}</ul><a href="{}">{}</a>',
            rows,
            history,
            gettext("All jobs of this batch"),
        )

    # --- the submit step --------------------------------------------------------------------

    def describe_submit(self, batch: StagingBatch) -> list[str]:
        customers = batch_sendable_count(batch=batch)
        chunk_size = min(int(settings.MIGRATION_CHUNK_SIZE), MAX_CUSTOMERS_PER_REQUEST)
        lines = submit_estimate_lines(customers=customers, chunk_size=chunk_size)
        active = jobs_active_count()
        if active:
            lines.append(
                ngettext(
                    "%(n)s other job is sending now and shares the pace, so this one will "
                    "take longer.",
                    "%(n)s other jobs are sending now and share the pace, so this one will "
                    "take longer.",
                    active,
                )
                % {"n": grouped(active)}
            )
        lines.extend(overlap_lines(batch))
        lines.append(gettext("Requests go to %(url)s.") % {"url": redact(settings.MASIVO_BASE_URL)})
        lines.append(
            gettext(
                "The batch becomes submitted and can no longer be reopened. The job's page "
                "shows its progress; failed chunks can be retried from there."
            )
        )
        return lines

    def run_submit(self, request: HttpRequest, batch: StagingBatch):
        job = services.job_start(batch=batch, user=request.user)
        return messages.SUCCESS, format_html(
            gettext(
                'Batch “{batch}” is submitted as job <a href="{url}">#{job}</a>: {amount}. '
                "Follow it on the job's page."
            ),
            batch=batch.name,
            url=reverse("admin:migrations_jobs_migrationjob_change", args=[job.pk]),
            job=job.pk,
            amount=amount_text(customers=job.total_customers, requests=job.chunk_count),
        )
