"""``manage.py batch_validate BATCH --user NAME``: check a batch against the contract.

Exits non-zero when the batch is not validated afterwards, listing the first problems.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from customers.management.arguments import (
    BATCH_HELP,
    USER_HELP,
    batch_from_argument,
    service_errors,
    user_from_argument,
)
from customers.management.progress import TerminalProgress
from customers.services import batch_validate, validation_advice

ERR_NOT_VALIDATED = (
    "Batch “{batch}” is not validated: {invalid} customer(s) are invalid and {problems} "
    "problem(s) were found. Fix or exclude them, then validate again."
)
# Not validated with no invalid customer: validation's own words say why (nothing left to
# send because other batches sent it all, rows of other batches' customers...).
ERR_NOT_VALIDATED_BECAUSE = "Batch “{batch}” is not validated. {advice}"
CHANGE_BATCH = "customers.change_stagingbatch"


class Command(BaseCommand):
    help = "Validate a staging batch against Masivo's contract and print what was found."
    # As the API's POST batches/<id>/validate/.
    required_permissions = (CHANGE_BATCH,)

    def add_arguments(self, parser):
        parser.add_argument("batch", help=BATCH_HELP)
        parser.add_argument("--user", required=True, help=USER_HELP + " Recorded as the validator.")
        parser.add_argument(
            "--problems",
            type=int,
            default=50,
            help="How many problems to print when the batch is not validated (default 50).",
        )

    def handle(self, *args, batch: str, user: str, problems: int, **options):
        validator = user_from_argument(user, permissions=self.required_permissions)
        found = batch_from_argument(batch)
        shown = TerminalProgress(self.stdout, total=found.customer_count, noun="customers checked")
        with service_errors():
            summary = batch_validate(batch=found, user=validator, progress=shown.update)
        shown.finish()
        self.stdout.write(
            f"Batch “{found.name}”: {summary.valid:,} valid, {summary.invalid:,} invalid, "
            f"{summary.excluded:,} excluded customer(s); {summary.problem_count:,} problem(s)."
        )
        advice = validation_advice(summary)
        if summary.is_validated:
            self.stdout.write(self.style.SUCCESS(f"Batch “{found.name}” is validated."))
            for line in advice[1:]:
                self.stdout.write(line)
            return
        listed = found.problems.order_by("legacy_id", "field", "pk")[: max(problems, 0)]
        for problem in listed:
            message = problem.get_message_display()
            self.stderr.write(f"{problem.legacy_id} {problem.field}: {message}")
        if summary.problem_count > len(listed):
            self.stderr.write(f"… and {summary.problem_count - len(listed):,} more.")
        if not summary.invalid:
            raise CommandError(
                ERR_NOT_VALIDATED_BECAUSE.format(batch=found.name, advice=" ".join(advice))
            )
        raise CommandError(
            ERR_NOT_VALIDATED.format(
                batch=found.name, invalid=summary.invalid, problems=summary.problem_count
            )
        )
