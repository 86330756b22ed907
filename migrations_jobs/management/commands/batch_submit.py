"""``manage.py batch_submit BATCH --user NAME [--wait]``: send an approved batch to Masivo.

With ``--wait``, a progress bar follows the job until it ends; the command exits 0 only
when the job succeeded.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from customers.management.arguments import (
    BATCH_HELP,
    USER_HELP,
    batch_from_argument,
    overlap_warnings,
    service_errors,
    user_from_argument,
)
from migrations_jobs.management.commands.job_status import progress_line
from migrations_jobs.models import MigrationJob
from migrations_jobs.selectors import job_progress
from migrations_jobs.services import SUBMIT_PERMISSION, job_start

ERR_JOB_ENDED = (
    "Job #{job} ended {status}: {sent:,} sent, {failed:,} failed of {total:,} customers. "
    "See manage.py job_status {job}."
)
ERR_STOPPED_WAITING = (
    "Stopped waiting after {seconds:,.0f} s; job #{job} is still {status} and carries on. "
    "Follow it with manage.py job_status {job}."
)
ERR_INTERVAL = "--interval must be a positive number of seconds."
ERR_JOB_HELD = (
    "Job #{job} waits for a decision: chunks of unknown outcome may or may not be in Masivo. "
    "Check Masivo, then run manage.py job_decide {job} --user NAME --arrived or --send-again."
)


class Command(BaseCommand):
    help = "Submit an approved batch to Masivo as a migration job; optionally wait for it."
    # As the API's POST batches/<id>/submit/.
    required_permissions = (SUBMIT_PERMISSION,)

    def add_arguments(self, parser):
        parser.add_argument("batch", help=BATCH_HELP)
        parser.add_argument("--user", required=True, help=USER_HELP + " The submitter.")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Follow the job with a progress bar until it ends; exit 0 only if it succeeded.",
        )
        parser.add_argument(
            "--interval", type=float, default=1.0, help="Seconds between polls (default 1)."
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=0.0,
            help="Stop waiting after this many seconds (default 0: wait until the job ends).",
        )

    def handle(self, *args, batch, user, wait, interval, timeout, **options):
        if interval <= 0:
            raise CommandError(ERR_INTERVAL)
        submitter = user_from_argument(user, permissions=self.required_permissions)
        found = batch_from_argument(batch)
        with service_errors():
            job = job_start(batch=found, user=submitter)
        self.stdout.write(
            f"Submitted batch “{found.name}” (id {found.pk}): job #{job.pk}, "
            f"{job.total_customers:,} customers in {job.chunk_count:,} chunk(s)."
        )
        for line in overlap_warnings(found):
            self.stdout.write(self.style.WARNING(line))
        if not wait:
            self.stdout.write(f"Follow it with: manage.py job_status {job.pk}")
            return
        job = self.follow(job, interval=interval, timeout=timeout)
        if job.status == MigrationJob.Status.HELD:
            raise CommandError(ERR_JOB_HELD.format(job=job.pk))
        if job.status != MigrationJob.Status.SUCCEEDED:
            raise CommandError(
                ERR_JOB_ENDED.format(
                    job=job.pk,
                    status=job.get_status_display().lower(),
                    sent=job.sent_customers,
                    failed=job.failed_customers,
                    total=job.total_customers,
                )
            )
        skipped = (
            f", {job.skipped_customers:,} skipped (sent by another batch)"
            if job.skipped_customers
            else ""
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Job #{job.pk} succeeded: {job.sent_customers:,} customers sent to Masivo"
                f"{skipped}."
            )
        )

    def follow(self, job: MigrationJob, *, interval: float, timeout: float) -> MigrationJob:
        """Poll ``job`` until it ends, redrawing the progress line when it changes.

        On a terminal the line is redrawn in place (``\\r``); elsewhere (a log, a pipe)
        each change is a new line.
        """
        in_place = self.stdout.isatty()
        started = time.monotonic()
        shown = ""
        try:
            while True:
                job.refresh_from_db()
                line = progress_line(job_progress(job=job))
                if line != shown:
                    if in_place:
                        padding = " " * max(0, len(shown) - len(line))
                        self.stdout.write(f"\r{line}{padding}", ending="")
                    else:
                        self.stdout.write(line)
                    self.stdout.flush()
                    shown = line
                if job.is_terminal or job.status == MigrationJob.Status.HELD:
                    break
                if timeout and time.monotonic() - started >= timeout:
                    raise CommandError(self._stopped(job, started))
                time.sleep(interval)
        except KeyboardInterrupt:
            raise CommandError(self._stopped(job, started)) from None
        finally:
            if in_place and shown:
                self.stdout.write("")
        return job

    @staticmethod
    def _stopped(job: MigrationJob, started: float) -> str:
        return ERR_STOPPED_WAITING.format(
            seconds=time.monotonic() - started,
            job=job.pk,
            status=job.get_status_display().lower(),
        )
