"""``manage.py job_status JOB``: a migration job's status, progress and counts.

``progress_line`` is shared with ``batch_submit --wait``.
"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from migrations_jobs.models import JobChunk, MigrationJob
from migrations_jobs.selectors import job_progress

ERR_UNKNOWN_JOB = "There is no job #{job}."
BAR_WIDTH = 20


def progress_line(progress: dict) -> str:
    """``[########............] 2,000/5,000 customers sent, 0 failed``."""
    done = BAR_WIDTH * progress["percent"] // 100
    bar = "#" * done + "." * (BAR_WIDTH - done)
    skipped = progress.get("skipped", 0)
    skipped_text = f"{skipped:,} skipped (sent by another batch), " if skipped else ""
    return (
        f"[{bar}] {progress['sent']:,}/{progress['total']:,} customers sent, "
        f"{skipped_text}{progress['failed']:,} failed"
    )


def _when(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z") if moment else "-"


def _duration(job: MigrationJob) -> str:
    if not (job.started_at and job.finished_at):
        return ""
    seconds = int((job.finished_at - job.started_at).total_seconds())
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    took = f"{hours}h {minutes}m {seconds}s" if hours else f"{minutes}m {seconds}s"
    return f" (took {took})"


class Command(BaseCommand):
    help = "Print a migration job's status, progress, chunks and counts."

    def add_arguments(self, parser):
        parser.add_argument("job", type=int, help="The job's number (id).")

    def handle(self, *args, job: int, **options):
        found = (
            MigrationJob.objects.select_related("batch", "started_by", "cancelled_by")
            .filter(pk=job)
            .first()
        )
        if found is None:
            raise CommandError(ERR_UNKNOWN_JOB.format(job=job))
        progress = job_progress(job=found)
        chunks = ", ".join(
            f"{progress['chunks'][status]:,} {status}" for status in JobChunk.Status.values
        )
        lines = [
            f"Job #{found.pk} of batch “{found.batch.name}” (id {found.batch_id}): "
            f"{found.get_status_display().lower()}",
            f"{progress_line(progress)} ({progress['percent']}%)",
            f"Chunks: {chunks}.",
            f"Requests: {progress['requests']:,}; chunks sent again after an unknown outcome: "
            f"{progress['retried_unknown']:,}.",
            f"Started by {found.started_by.get_username()}: created {_when(found.created_at)}, "
            f"started {_when(found.started_at)}, finished {_when(found.finished_at)}"
            f"{_duration(found)}.",
        ]
        if found.has_history:
            lines.append(
                "Phases: "
                + "; ".join(
                    f"{phase['endpoint']} {phase['state']} ({phase['sent']:,} sent, "
                    f"{phase['failed']:,} failed, {phase['skipped']:,} left out of "
                    f"{phase['total']:,})"
                    for phase in progress["phases"]
                )
                + "."
            )
        if found.cancelled_by_id:
            lines.append(f"Cancelled by {found.cancelled_by.get_username()}.")
        if found.status == MigrationJob.Status.HELD:
            lines.append(
                f"{progress['chunks'][JobChunk.Status.HELD]:,} chunk(s) have an unknown outcome "
                "and wait for your decision: check Masivo, then run "
                f"manage.py job_decide {found.pk} --user NAME --arrived (they are there) or "
                "--send-again."
            )
        self.stdout.write("\n".join(lines))
