"""Emails about jobs: when a job ends, its outcome goes to whoever started it and to
``MIGRATION_NOTIFY_EMAILS``, with a link to its page.

``notify_job_finished`` runs after the transaction that ended the job commits. Each ending
is announced once: a conditional UPDATE of ``notified_at`` lets exactly one caller through,
however many workers see the job end. A job that ends again after its failed chunks were
retried is announced again.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from migrations_jobs.models import MigrationJob
from migrations_jobs.selectors import job_duration_s
from migrations_jobs.templatetags.console_jobs import duration_text, grouped

logger = logging.getLogger("migrations_jobs")

DEFAULT_CONSOLE_BASE_URL = "http://127.0.0.1:8000"
JobStatus = MigrationJob.Status


def console_url(path: str) -> str:
    """An absolute URL of the console for ``path`` (emails are read outside the console)."""
    base = getattr(settings, "CONSOLE_BASE_URL", DEFAULT_CONSOLE_BASE_URL) or (
        DEFAULT_CONSOLE_BASE_URL
    )
    return base.rstrip("/") + path


def job_recipients(*, job: MigrationJob) -> list[str]:
    """Whoever started the job, then ``MIGRATION_NOTIFY_EMAILS``, each address once."""
    addresses = [job.started_by.email, *getattr(settings, "MIGRATION_NOTIFY_EMAILS", [])]
    unique: dict[str, str] = {}
    for address in addresses:
        address = (address or "").strip()
        if address:
            unique.setdefault(address.lower(), address)
    return list(unique.values())


def job_outcome_text(*, job: MigrationJob) -> str:
    """The job's ending in a few words, to follow "Job #12 for batch “x”"."""
    return {
        JobStatus.SUCCEEDED: gettext("succeeded"),
        JobStatus.PARTIALLY_FAILED: gettext("partially failed"),
        JobStatus.FAILED: gettext("failed"),
        JobStatus.CANCELLED: gettext("was cancelled"),
    }[job.status]


def job_outcome_subject(*, job: MigrationJob) -> str:
    counts = {
        "job": job.pk,
        "outcome": job_outcome_text(job=job),
        "sent": grouped(job.sent_customers),
        "failed": grouped(job.failed_customers),
        "total": grouped(job.total_customers),
    }
    if job.failed_customers:
        text = gettext(
            "Job #%(job)s %(outcome)s: %(sent)s sent, %(failed)s failed of %(total)s customers"
        )
    else:
        text = gettext("Job #%(job)s %(outcome)s: %(sent)s of %(total)s customers sent")
    return gettext("[Masivo console] %(text)s") % {"text": text % counts}


def job_outcome_message(*, job: MigrationJob) -> tuple[str, str]:
    """The email's subject and body, in the current language."""
    job_path = reverse("admin:migrations_jobs_migrationjob_change", args=[job.pk])
    csv_path = reverse("admin:migrations_jobs_migrationjob_failed_csv", args=[job.pk])
    body = render_to_string(
        "admin/migrations_jobs/email/job_finished.txt",
        {
            "job": job,
            "outcome": job_outcome_text(job=job),
            "not_sent": max(
                0,
                job.total_customers
                - job.sent_customers
                - job.failed_customers
                - job.skipped_customers,
            ),
            "duration": duration_text(job_duration_s(job=job)),
            "job_url": console_url(job_path),
            "failed_csv_url": console_url(csv_path),
        },
    )
    return job_outcome_subject(job=job), body


def notify_job_finished(*, job_id: int) -> bool:
    """Email the outcome of job ``job_id`` if it has ended and this ending was not announced
    yet; True when an email left.

    Never raises: it runs where a job ends (a worker, an operator's request), and a mail
    server that is down must not disturb that. A failure is logged.
    """
    try:
        return _notify(job_id=job_id)
    except Exception:
        logger.exception("Could not email the outcome of job #%s", job_id)
        return False


def _notify(*, job_id: int) -> bool:
    claimed = MigrationJob.objects.filter(
        Q(notified_at__isnull=True) | Q(notified_at__lt=F("finished_at")),
        pk=job_id,
        status__in=MigrationJob.TERMINAL_STATUSES,
        finished_at__isnull=False,
    ).update(notified_at=timezone.now())
    if not claimed:
        return False
    job = MigrationJob.objects.select_related("batch", "started_by", "cancelled_by").get(pk=job_id)
    recipients = job_recipients(job=job)
    if not recipients:
        logger.info("Job #%s ended (%s); nobody to email", job.pk, job.status)
        return False
    with translation.override(settings.LANGUAGE_CODE):
        subject, body = job_outcome_message(job=job)
    EmailMessage(subject=subject, body=body, to=recipients).send()
    logger.info("Job #%s ended (%s); emailed %s", job.pk, job.status, ", ".join(recipients))
    return True
