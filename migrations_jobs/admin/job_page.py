"""The job page: its summary, the actions offered, failed customers (first, when there
are any), chunks with their attempts, skipped customers; and the small JSON view that its
live script polls, which answers the same parts rendered again, so that the page follows
the job without a reload.

Each changing part is a template of its own (``JOB_PARTS``); the page includes them and
the JSON view renders them with the same context, so both always agree.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.admin.utils import display_for_field
from django.http import HttpRequest, JsonResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext

from customers.models import Outcome
from customers.services import user_may_see_customers
from migrations_jobs import services
from migrations_jobs.exports import customer_outcome_detail
from migrations_jobs.failures import (
    FailureText,
    cancelled_text,
    failure_text,
    held_text,
    split_text,
    waiting_text,
)
from migrations_jobs.models import ChunkAttempt, Endpoint, JobChunk, MigrationJob
from migrations_jobs.selectors import (
    ChunkFailure,
    chunk_failures,
    job_chunk_page,
    job_customers,
    job_duration_s,
    job_eta_s,
    job_failed_chunk_counts,
    job_possibly_twice_count,
    job_progress,
)
from migrations_jobs.selectors.phases import PhaseState
from migrations_jobs.templatetags.console_jobs import (
    bar_widths,
    duration_text,
    eta_text,
    grouped,
)

ChunkStatus = JobChunk.Status

CHUNKS_PER_PAGE = 50
FAILED_CUSTOMERS_SHOWN = 50
DASH = "—"
PART_TEMPLATE = "admin/migrations_jobs/migrationjob/job_{}.html"
# The parts of the page that the live script replaces, by name.
JOB_PARTS = ("tools", "phases", "notes", "failed", "chunks", "skipped")
# The job's own fields (read-only on its page) that change while it runs.
LIVE_FIELDS = ("started_at", "finished_at", "heartbeat_at", "notified_at")
# What the admin shows for an empty field.
DASH_EMPTY = "-"


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


def _chunk_describe(chunk: JobChunk, *, now) -> None:
    """What the chunk table shows of a chunk beyond its fields: what happened to it in
    words, the worker that holds it (or made its last attempt), when it may go again."""
    attempts = list(chunk.attempt_log.all())
    chunk.worker = chunk.lease_owner or (attempts[-1].worker if attempts else "")
    chunk.worker_parts = chunk.worker.split(":")  # host, process, run: may wrap between
    chunk.retry_at = (
        chunk.not_before
        if chunk.status == ChunkStatus.PENDING and chunk.attempts and chunk.not_before > now
        else None
    )
    chunk.note, chunk.note_advice = "", ""
    failure = ChunkFailure.of_chunk(chunk)
    if chunk.status == ChunkStatus.CANCELLED:
        chunk.note = cancelled_text()
    elif not failure.is_recorded or failure.outcome == ChunkAttempt.Outcome.ACCEPTED:
        chunk.note = chunk.last_error
    elif chunk.status == ChunkStatus.FAILED:
        text = failure_text(failure)
        chunk.note, chunk.note_advice = text.what, text.advice
    elif chunk.status == ChunkStatus.SPLIT:
        chunk.note = split_text(failure)
    elif chunk.status == ChunkStatus.HELD:
        chunk.note = held_text(failure)
    elif chunk.status == ChunkStatus.PENDING:
        chunk.note = waiting_text(failure)


def _failed_groups(job: MigrationJob) -> list[dict]:
    """The first failed customers, grouped by the chunk that failed them, each group with
    what happened in words and Masivo's answer."""
    shown = list(job_customers(job=job, outcome=Outcome.FAILED)[:FAILED_CUSTOMERS_SHOWN])
    failures = chunk_failures(
        job=job, chunk_ids={c.outcome_chunk_id for c in shown if c.outcome_chunk_id}
    )
    groups: dict[int | None, dict] = {}
    for customer in shown:
        group = groups.get(customer.outcome_chunk_id)
        if group is None:
            failure = failures.get(customer.outcome_chunk_id)
            text = (
                failure_text(failure)
                if failure and failure.is_recorded
                else FailureText(what=customer.outcome_error, advice="", may_retry=True)
            )
            group = groups[customer.outcome_chunk_id] = {
                "sequence": customer.chunk_sequence,
                "text": text,
                "excerpt": failure.excerpt if failure else "",
                "customers": [],
            }
        group["customers"].append(customer)
    return sorted(groups.values(), key=lambda group: group["sequence"] or 0)


def _retry_note(job: MigrationJob) -> str:
    """Why "Retry failed chunks" is not offered, or what it leaves, when failed chunks
    are not all retryable (or the job was cancelled)."""
    counts = job_failed_chunk_counts(job=job)
    retryable, refused = counts["retryable"], counts["refused"]
    if retryable and job.status == MigrationJob.Status.CANCELLED:
        return gettext("“Retry failed chunks” is not offered: a cancelled job cannot be retried.")
    if refused and not retryable:
        return ngettext(
            "“Retry failed chunks” is not offered: Masivo refused the failed chunk for good, so "
            "sending it again cannot succeed. Fix its customers and send them in a new batch.",
            "“Retry failed chunks” is not offered: Masivo refused the %(n)s failed chunks for "
            "good, so sending them again cannot succeed. Fix their customers and send them in "
            "a new batch.",
            refused,
        ) % {"n": grouped(refused)}
    if refused and retryable:
        return ngettext(
            "“Retry failed chunks” sends again only the chunks that failed for a passing "
            "reason; the %(n)s chunk Masivo refused for good stays failed.",
            "“Retry failed chunks” sends again only the chunks that failed for a passing "
            "reason; the %(n)s chunks Masivo refused for good stay failed.",
            refused,
        ) % {"n": grouped(refused)}
    return ""


def _phases_context(job: MigrationJob, progress: dict) -> dict:
    """The phases table of a job that sends history, and what its next phase waits for."""
    if not job.has_history:
        return {"phases": []}
    phases = [
        {
            **phase,
            "label": Endpoint(phase["endpoint"]).label,
            "state_label": PhaseState.LABELS[phase["state"]],
        }
        for phase in progress["phases"]
    ]
    note = ""
    if any(phase["state"] == "waiting" for phase in phases) and job.is_active:
        delay = settings.MASIVO_HISTORY_DELAY_S
        note = ngettext(
            "Masivo queues what it accepts: each phase starts %(delay)s second after the last "
            "request of the one before was accepted.",
            "Masivo queues what it accepts: each phase starts %(delay)s seconds after the last "
            "request of the one before was accepted.",
            int(delay),
        ) % {"delay": grouped(int(delay)) if float(delay).is_integer() else number_format(delay)}
    return {"phases": phases, "phases_waiting_note": note}


class JobPageMixin:
    """The job page's context and parts, and its live JSON view, for ``MigrationJobAdmin``."""

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
        return {
            **progress,
            "id": job.pk,
            "status_label": str(job.get_status_display()),
            "is_active": job.is_active,
            "is_terminal": job.is_terminal,
            "not_sent": not_sent,
            "open_chunks": open_chunks,
            "eta_s": eta,
            "eta": eta_text(eta) if job.is_active else "",
            "duration_s": duration,
            "duration": duration_text(duration) or DASH,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            # The bar, as the percentage, covers the customers and their history.
            "bar": bar_widths(
                sent=job.carried("sent"),
                failed=job.carried("failed"),
                total=job.carried("total"),
                skipped=job.carried("skipped"),
            ),
            "bar_total": job.carried("total"),
            "bar_done": job.carried("sent") + job.carried("failed") + job.carried("skipped"),
            "fields": {
                name: str(
                    display_for_field(getattr(job, name), job._meta.get_field(name), DASH_EMPTY)
                )
                for name in LIVE_FIELDS
            },
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
        """The job's progress, and the page's changing parts rendered again (``html``) for
        the chunk filter and page the script's page shows (its query string)."""
        job = self.job_or_404(request, object_id)
        context = self.job_page_context(request, job)
        data = dict(context["progress"])
        data["html"] = {
            name: render_to_string(PART_TEMPLATE.format(name), context, request=request)
            for name in JOB_PARTS
        }
        response = JsonResponse(data)
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
        now = timezone.now()
        for chunk in chunks:
            chunk.last_outcome_label = outcomes.get(chunk.last_outcome, chunk.last_outcome)
            _chunk_describe(chunk, now=now)
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

    def _skipped_shown(self, job: MigrationJob) -> list:
        if not job.skipped_customers:
            return []
        shown = list(job_customers(job=job, outcome=Outcome.SKIPPED)[:FAILED_CUSTOMERS_SHOWN])
        for customer in shown:
            customer.detail = customer_outcome_detail(customer)
        return shown

    def _customers_urls(self, job: MigrationJob) -> dict:
        """The staged-customer list filtered to the job's failed, skipped, possibly twice."""
        base = reverse("admin:customers_stagedcustomer_changelist") + "?"
        job_filter = {"outcome_job_id": job.pk}
        return {
            "failed_customers_url": base
            + urlencode({**job_filter, "outcome__exact": Outcome.FAILED}),
            "skipped_customers_url": base
            + urlencode({**job_filter, "outcome__exact": Outcome.SKIPPED}),
            "possibly_twice_url": base
            + urlencode(
                {**job_filter, "outcome__exact": Outcome.SENT, "outcome_maybe_twice__exact": 1}
            ),
        }

    def job_page_context(self, request: HttpRequest, job: MigrationJob) -> dict:
        progress = self.progress_data(job)
        can_see_customers = user_may_see_customers(user=request.user)
        failed_groups, skipped = [], []
        if can_see_customers:
            failed_groups = _failed_groups(job) if job.failed_customers else []
            skipped = self._skipped_shown(job)
        failed_shown = sum(len(group["customers"]) for group in failed_groups)
        return {
            "opts": self.opts,
            "original": job,
            "progress": progress,
            "job_actions": self.allowed_steps(request, job),
            "can_see_customers": can_see_customers,
            "failed_groups": failed_groups,
            "failed_shown": failed_shown,
            "failed_customers_more": job.failed_customers > failed_shown,
            "skipped_customers": skipped,
            "skipped_customers_more": job.skipped_customers > len(skipped),
            "possibly_twice": job_possibly_twice_count(job=job),
            "retry_note": _retry_note(job) if job.failed_customers else "",
            "held_chunks": progress["chunks"][ChunkStatus.HELD],
            "held_transactions": bool(progress["chunks"][ChunkStatus.HELD])
            and job.chunks.filter(status=ChunkStatus.HELD, endpoint=Endpoint.TRANSACTIONS).exists(),
            **_phases_context(job, progress),
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
            **self._customers_urls(job),
            **self._chunk_listing(request, job, progress["chunks"]),
        }
