"""A job's phases as the job page, the API and the notifications show them: what each
sends, where it is, and its counts (see ``services.phases``)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from migrations_jobs.models import PHASES, Endpoint, JobChunk, MigrationJob

ChunkStatus = JobChunk.Status


class PhaseState:
    """Where a phase is, from its chunks' statuses."""

    WAITING = "waiting"
    HELD = "held"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"

    LABELS = {
        WAITING: _("Waiting for the previous phase"),
        HELD: _("Waiting for a decision"),
        SENDING: _("Sending"),
        DONE: _("Done"),
        CANCELLED: _("Cancelled"),
    }


def _state(statuses: dict[str, int]) -> str:
    if statuses.get(ChunkStatus.HELD):
        return PhaseState.HELD
    if statuses.get(ChunkStatus.PENDING) or statuses.get(ChunkStatus.SENDING):
        return PhaseState.SENDING
    if statuses.get(ChunkStatus.WAITING):
        return PhaseState.WAITING
    ended = sum(statuses.values())
    if ended and statuses.get(ChunkStatus.CANCELLED) == ended:
        return PhaseState.CANCELLED
    return PhaseState.DONE


def chunks_by_endpoint(*, job: MigrationJob) -> dict[str, dict[str, int]]:
    """The job's chunks counted by what they send, then by status (one query)."""
    counted: dict[str, dict[str, int]] = {}
    rows = (
        JobChunk.objects.filter(job=job)
        .values_list("endpoint", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for endpoint, status, count in rows:
        counted.setdefault(endpoint, {})[status] = count
    return counted


def job_phases(
    *, job: MigrationJob, counted: dict[str, dict[str, int]] | None = None
) -> list[dict[str, Any]]:
    """One entry per phase the job has, in the order it sends them: what it sends
    (``endpoint``), where it is (``state``), its chunks by status, and the customers (for
    customers) or rows of history it carries: total, sent, failed, and left out (skipped
    customers; history whose customer is not in Masivo, or whose transactions went
    before). ``counted``: ``chunks_by_endpoint``, when the caller has it."""
    by_endpoint = chunks_by_endpoint(job=job) if counted is None else counted
    noun = {Endpoint.CUSTOMERS: "customers"}
    phases = []
    for endpoint in sorted(by_endpoint, key=lambda name: PHASES[name]):
        statuses = by_endpoint[endpoint]
        counter = noun.get(endpoint, endpoint)
        state = _state(statuses)
        phases.append(
            {
                "endpoint": endpoint,
                "label": Endpoint(endpoint).label,
                "state": state,
                "state_label": PhaseState.LABELS[state],
                "chunks": sum(statuses.values()),
                "chunks_by_status": statuses,
                "total": getattr(job, f"total_{counter}"),
                "sent": getattr(job, f"sent_{counter}"),
                "failed": getattr(job, f"failed_{counter}"),
                "skipped": getattr(job, f"skipped_{counter}"),
            }
        )
    return phases
