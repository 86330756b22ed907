"""Job history and job pages: read-only records, live progress, chunks with their attempts,
failed customers and their CSV. The job page itself is ``job_page``; the operators'
actions live in ``job_actions``."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from customers.admin.mixins import IdLookupsMixin, ReadOnlyAdminMixin
from customers.models import Outcome
from customers.services import customer_data_log, user_may_see_customers
from migrations_jobs.admin.job_actions import JobActionsMixin
from migrations_jobs.admin.job_page import DASH, JobPageMixin
from migrations_jobs.exports import customers_csv_response
from migrations_jobs.history_exports import history_csv_response
from migrations_jobs.models import MigrationJob
from migrations_jobs.selectors import job_duration_s, job_eta_s, job_history
from migrations_jobs.templatetags.console_jobs import (
    duration_text,
    eta_text,
    grouped,
    job_progress_bar,
    status_badge,
)

ERR_NO_JOB = _("There is no job with id %(id)s.")
ERR_NO_OUTCOME = _("“%(outcome)s” is not an outcome of a customer.")


@admin.register(MigrationJob)
class MigrationJobAdmin(
    JobActionsMixin, JobPageMixin, IdLookupsMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    # Who started a job shows under when (one column less, so the history fits beside the
    # admin's navigation and filters at 1440 px).
    list_display = (
        "job_label",
        "batch",
        "status_display",
        "progress_display",
        "failed_display",
        "started_display",
        "duration_display",
    )
    list_filter = ("status", "batch")
    list_select_related = ("batch", "started_by", "cancelled_by")
    search_fields = ("batch__name", "started_by__username")
    date_hierarchy = "created_at"
    actions = ("cancel_jobs", "retry_failed_chunks", "resume_jobs")
    fieldsets = (
        (
            _("Job"),
            {
                "fields": (
                    ("batch", "started_by", "cancelled_by"),
                    ("created_at", "started_at", "finished_at"),
                    ("heartbeat_at", "notified_at"),
                )
            },
        ),
        (_("Settings used"), {"fields": ("settings_display",), "classes": ("collapse",)}),
    )
    readonly_fields = (
        "batch",
        "started_by",
        "cancelled_by",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "notified_at",
        "settings_display",
    )

    class Media:
        css = {"all": ("console_jobs/console.css",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[MigrationJob]:
        return job_history(jobs=super().get_queryset(request))

    # --- history columns ---------------------------------------------------------------------

    @admin.display(description=_("job"), ordering="pk")
    def job_label(self, job: MigrationJob) -> str:
        return str(job)

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, job: MigrationJob) -> str:
        return status_badge(job.status, job.get_status_display())

    @admin.display(description=_("progress"))
    def progress_display(self, job: MigrationJob) -> str:
        return job_progress_bar(job)

    @admin.display(description=_("failed"), ordering="failed_customers")
    def failed_display(self, job: MigrationJob) -> str:
        if not job.failed_customers:
            return "0"
        return format_html('<span class="console-failed">{}</span>', grouped(job.failed_customers))

    @admin.display(description=_("started"), ordering="started_at")
    def started_display(self, job: MigrationJob) -> str:
        when = (
            date_format(timezone.localtime(job.started_at), "Y-m-d H:i")
            if job.started_at
            else gettext("not yet")
        )
        return format_html('{}<div class="console-by">{}</div>', when, job.started_by)

    @admin.display(description=_("duration"))
    def duration_display(self, job: MigrationJob) -> str:
        duration = duration_text(job_duration_s(job=job), short=True) or DASH
        if not job.is_active:
            return duration
        eta = job_eta_s(job=job, open_chunks=job.open_chunk_count)
        left = (
            gettext("%(eta)s left") % {"eta": eta_text(eta, short=True)}
            if eta is not None
            else gettext("time left unknown")
        )
        return format_html('{}<div class="console-eta">{}</div>', duration, left)

    @admin.display(description=_("settings used"))
    def settings_display(self, job: MigrationJob) -> str:
        if not job.settings_used:
            return DASH
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td></tr>",
            sorted(job.settings_used.items()),
        )
        return format_html('<table class="console-settings">{}</table>', rows)

    # --- bulk actions on the history ---------------------------------------------------------

    # --- the job page ------------------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<int:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="{}_{}_progress".format(*info),
            ),
            *self.step_urls(),
            path(
                "<int:object_id>/customers.csv",
                self.admin_site.admin_view(self.customers_csv_view),
                name="{}_{}_customers_csv".format(*info),
            ),
            # The failed customers' file, as linked from job emails.
            path(
                "<int:object_id>/history.csv",
                self.admin_site.admin_view(self.history_csv_view),
                name="{}_{}_history_csv".format(*info),
            ),
            path(
                "<int:object_id>/failed-customers.csv",
                self.admin_site.admin_view(self.failed_csv_view),
                name="{}_{}_failed_csv".format(*info),
            ),
            *super().get_urls(),
        ]

    def job_or_404(self, request: HttpRequest, object_id: int) -> MigrationJob:
        job = self.get_object(request, str(object_id))
        if job is None:
            raise Http404(ERR_NO_JOB % {"id": object_id})
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        return job

    def change_url(self, job: MigrationJob) -> str:
        return reverse("admin:migrations_jobs_migrationjob_change", args=[job.pk])

    def render_change_form(
        self, request, context, add=False, change=False, form_url="", obj=None
    ) -> HttpResponse:
        if obj is not None:
            context.update(self.job_page_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- the job's customers as CSV ----------------------------------------------------------

    def customers_csv_view(self, request: HttpRequest, object_id: int) -> StreamingHttpResponse:
        """The job's customers (``?outcome=failed|skipped|sent|not_sent``, or
        ``?possibly_twice=1``) as the API's CSV."""
        job = self.job_or_404(request, object_id)
        if not user_may_see_customers(user=request.user):
            raise PermissionDenied
        outcome = request.GET.get("outcome", "")
        if outcome and outcome not in Outcome.values:
            raise Http404(ERR_NO_OUTCOME % {"outcome": outcome})
        customer_data_log(user=request.user, what="customers CSV", job_id=job.pk)
        return customers_csv_response(
            job=job,
            outcome=outcome or None,
            possibly_twice=request.GET.get("possibly_twice") == "1",
        )

    def history_csv_view(self, request: HttpRequest, object_id: int) -> StreamingHttpResponse:
        """What became of the job's transactions and events, per customer, as CSV."""
        job = self.job_or_404(request, object_id)
        if not user_may_see_customers(user=request.user):
            raise PermissionDenied
        customer_data_log(user=request.user, what="history CSV", job_id=job.pk)
        return history_csv_response(job=job)

    def failed_csv_view(self, request: HttpRequest, object_id: int) -> StreamingHttpResponse:
        job = self.job_or_404(request, object_id)
        if not user_may_see_customers(user=request.user):
            raise PermissionDenied
        customer_data_log(user=request.user, what="failed customers CSV", job_id=job.pk)
        return customers_csv_response(job=job, outcome=Outcome.FAILED, possibly_twice=False)
