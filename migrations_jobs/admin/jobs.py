"""Job history and job pages: read-only records, live progress, chunks with their attempts,
failed customers and their CSV. The operators' actions live in ``job_actions``."""

from __future__ import annotations

import math

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from customers.admin.mixins import ReadOnlyAdminMixin
from customers.models import Outcome
from migrations_jobs import services
from migrations_jobs.admin.job_actions import JobActionsMixin
from migrations_jobs.exports import customer_outcome_detail, customers_csv_response
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob
from migrations_jobs.selectors import (
    job_chunk_page,
    job_customers,
    job_duration_s,
    job_eta_s,
    job_history,
    job_possibly_twice_count,
    job_progress,
)
from migrations_jobs.templatetags.console_jobs import (
    bar_widths,
    duration_text,
    eta_text,
    grouped,
    job_progress_bar,
    status_badge,
)

JobStatus = MigrationJob.Status
ChunkStatus = JobChunk.Status

VIEW_CUSTOMER = "customers.view_stagedcustomer"
CHUNKS_PER_PAGE = 50
FAILED_CUSTOMERS_SHOWN = 50
DASH = "—"

ERR_NO_JOB = _("There is no job with id %(id)s.")
ERR_NO_OUTCOME = _("“%(outcome)s” is not an outcome of a customer.")


def _chunks_link(*, status: str, page: int = 1) -> str:
    """The job page's address showing chunks of ``status`` (all when empty), on ``page``."""
    query: dict = {"chunks": status} if status else {}
    if page > 1:
        query["chunks_page"] = page
    return ("?" + urlencode(query) if query else "?") + "#chunks"


def _chunk_filters(*, counts: dict[str, int], status: str) -> list[dict]:
    """The job page's chunk filters: all, then each status that has chunks."""
    every = {
        "label": gettext("All"),
        "count": grouped(sum(counts.values())),
        "url": _chunks_link(status=""),
        "selected": not status,
        "status": "",
    }
    return [every] + [
        {
            "label": ChunkStatus(value).label,
            "count": grouped(counts[value]),
            "url": _chunks_link(status=value),
            "selected": status == value,
            "status": value,
        }
        for value in ChunkStatus.values
        if counts[value]
    ]


@admin.register(MigrationJob)
class MigrationJobAdmin(JobActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "job_label",
        "batch",
        "started_by",
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
        if job.started_at is None:
            return DASH
        return date_format(timezone.localtime(job.started_at), "Y-m-d H:i")

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

    def progress_data(self, job: MigrationJob, *, now=None) -> dict:
        """What the job page shows of the job's progress, and its live script updates."""
        now = now or timezone.now()
        progress = job_progress(job=job)
        chunks = progress["chunks"]
        open_chunks = chunks[ChunkStatus.PENDING] + chunks[ChunkStatus.SENDING]
        eta = job_eta_s(job=job, open_chunks=open_chunks, now=now)
        duration = job_duration_s(job=job, now=now)
        not_sent = max(
            0,
            job.total_customers - job.sent_customers - job.failed_customers - job.skipped_customers,
        )
        widths = bar_widths(
            sent=job.sent_customers,
            failed=job.failed_customers,
            total=job.total_customers,
            skipped=job.skipped_customers,
        )
        return {
            **progress,
            "id": job.pk,
            "status_label": str(job.get_status_display()),
            "is_active": job.is_active,
            "not_sent": not_sent,
            "open_chunks": open_chunks,
            "eta_s": eta,
            "eta": eta_text(eta) if job.is_active else "",
            "duration_s": duration,
            "duration": duration_text(duration) or DASH,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "bar": widths,
            "text": {
                "total": grouped(job.total_customers),
                "sent": grouped(job.sent_customers),
                "failed": grouped(job.failed_customers),
                "skipped": grouped(job.skipped_customers),
                "not_sent": grouped(not_sent),
                "percent": f"{progress['percent']}%",
                "requests": grouped(job.request_count),
                "chunks": {status: grouped(n) for status, n in chunks.items()},
            },
        }

    def progress_view(self, request: HttpRequest, object_id: int) -> JsonResponse:
        job = self.job_or_404(request, object_id)
        response = JsonResponse(self.progress_data(job))
        response["Cache-Control"] = "no-store"
        return response

    def _chunk_listing(self, request: HttpRequest, job: MigrationJob, counts: dict) -> dict:
        """The page of chunks shown, its status filter and its page links."""
        status = request.GET.get("chunks", "")
        if status not in ChunkStatus.values:
            status = ""
        total = counts[status] if status else sum(counts.values())
        pages = max(1, math.ceil(total / CHUNKS_PER_PAGE))
        try:
            page = min(max(1, int(request.GET.get("chunks_page", "1"))), pages)
        except ValueError:
            page = 1
        offset = (page - 1) * CHUNKS_PER_PAGE
        chunks = job_chunk_page(
            job=job, status=status or None, offset=offset, limit=CHUNKS_PER_PAGE
        )
        outcomes = dict(ChunkAttempt.Outcome.choices)
        for chunk in chunks:
            chunk.last_outcome_label = outcomes.get(chunk.last_outcome, chunk.last_outcome)
        return {
            "chunks": chunks,
            "chunk_filters": _chunk_filters(counts=counts, status=status),
            "chunk_status": status,
            "chunk_page": page,
            "chunk_pages": pages,
            "chunk_first": offset + 1 if total else 0,
            "chunk_last": min(offset + CHUNKS_PER_PAGE, total),
            "chunk_total": total,
            "chunk_previous_url": _chunks_link(status=status, page=page - 1) if page > 1 else "",
            "chunk_next_url": _chunks_link(status=status, page=page + 1) if page < pages else "",
        }

    def _customers_shown(self, job: MigrationJob, outcome: str, count: int) -> list:
        if not count:
            return []
        shown = list(job_customers(job=job, outcome=outcome)[:FAILED_CUSTOMERS_SHOWN])
        for customer in shown:
            customer.detail = customer_outcome_detail(customer)
        return shown

    def job_page_context(self, request: HttpRequest, job: MigrationJob) -> dict:
        progress = self.progress_data(job)
        can_see_customers = request.user.has_perm(VIEW_CUSTOMER)
        failed, skipped = [], []
        if can_see_customers:
            failed = self._customers_shown(job, Outcome.FAILED, job.failed_customers)
            skipped = self._customers_shown(job, Outcome.SKIPPED, job.skipped_customers)
        customers_url = reverse("admin:customers_stagedcustomer_changelist")
        return {
            "progress": progress,
            "job_actions": self.allowed_steps(request, job),
            "can_see_customers": can_see_customers,
            "failed_customers": failed,
            "failed_customers_more": job.failed_customers > len(failed),
            "failed_customers_url": customers_url
            + "?"
            + urlencode({"outcome_job_id": job.pk, "outcome__exact": Outcome.FAILED}),
            "skipped_customers": skipped,
            "skipped_customers_more": job.skipped_customers > len(skipped),
            "skipped_customers_url": customers_url
            + "?"
            + urlencode({"outcome_job_id": job.pk, "outcome__exact": Outcome.SKIPPED}),
            "possibly_twice": job_possibly_twice_count(job=job),
            "possibly_twice_url": customers_url
            + "?"
            + urlencode(
                {
                    "outcome_job_id": job.pk,
                    "outcome__exact": Outcome.SENT,
                    "outcome_maybe_twice__exact": 1,
                }
            ),
            "held_chunks": progress["chunks"][ChunkStatus.HELD],
            "can_decide_held": request.user.has_perm(services.RETRY_PERMISSION),
            "chunk_counts": [
                {
                    "status": status,
                    "label": label,
                    "count": progress["chunks"][status],
                    "text": progress["text"]["chunks"][status],
                }
                for status, label in ChunkStatus.choices
            ],
            **self._chunk_listing(request, job, progress["chunks"]),
        }

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
        if not request.user.has_perm(VIEW_CUSTOMER):
            raise PermissionDenied
        outcome = request.GET.get("outcome", "")
        if outcome and outcome not in Outcome.values:
            raise Http404(ERR_NO_OUTCOME % {"outcome": outcome})
        return customers_csv_response(
            job=job,
            outcome=outcome or None,
            possibly_twice=request.GET.get("possibly_twice") == "1",
        )

    def failed_csv_view(self, request: HttpRequest, object_id: int) -> StreamingHttpResponse:
        job = self.job_or_404(request, object_id)
        if not request.user.has_perm(VIEW_CUSTOMER):
            raise PermissionDenied
        return customers_csv_response(job=job, outcome=Outcome.FAILED, possibly_twice=False)
