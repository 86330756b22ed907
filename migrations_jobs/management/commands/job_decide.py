"""``manage.py job_decide JOB --user NAME (--arrived | --send-again)``: decide on a job's
chunks held with an unknown outcome (``MIGRATION_UNKNOWN_OUTCOME = hold``).

``--arrived`` after finding their customers in Masivo (they count as sent);
``--send-again`` after finding them missing (they are sent again).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from customers.management.arguments import USER_HELP, service_errors, user_from_argument
from migrations_jobs.models import MigrationJob
from migrations_jobs.services import RETRY_PERMISSION, job_held_mark_arrived, job_held_resend

ERR_UNKNOWN_JOB = "There is no job #{job}."


class Command(BaseCommand):
    help = "Decide on a job's chunks of unknown outcome: they arrived, or send them again."
    # As the API's POST jobs/<id>/held/arrived/ and held/send-again/.
    required_permissions = (RETRY_PERMISSION,)

    def add_arguments(self, parser):
        parser.add_argument("job", type=int, help="The job's number (id).")
        parser.add_argument("--user", required=True, help=USER_HELP + " Who decides.")
        decision = parser.add_mutually_exclusive_group(required=True)
        decision.add_argument(
            "--arrived", action="store_true", help="Their customers are in Masivo."
        )
        decision.add_argument(
            "--send-again", action="store_true", help="Their customers are not in Masivo."
        )

    def handle(self, *args, job, user, arrived, send_again, **options):
        decider = user_from_argument(user, permissions=self.required_permissions)
        found = MigrationJob.objects.filter(pk=job).first()
        if found is None:
            raise CommandError(ERR_UNKNOWN_JOB.format(job=job))
        service = job_held_mark_arrived if arrived else job_held_resend
        with service_errors():
            decided = service(job=found, user=decider)
        self.stdout.write(
            self.style.SUCCESS(
                f"Job #{decided.pk} is {decided.get_status_display().lower()}: "
                f"{decided.sent_customers:,} sent, {decided.skipped_customers:,} skipped, "
                f"{decided.failed_customers:,} failed of {decided.total_customers:,}."
            )
        )
