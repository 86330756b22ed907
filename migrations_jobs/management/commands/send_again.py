"""``manage.py send_again BATCH --user NAME --reason TEXT (--ids A,B | --file F | --skipped)``:
send chosen customers again although the console already sent (or skipped) them.

The service needs the user to hold the permission to approve batches, and records the
decision with its reason.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from customers.management.arguments import (
    BATCH_HELP,
    USER_HELP,
    batch_from_argument,
    service_errors,
    user_from_argument,
)
from customers.models import Outcome, StagedCustomer
from migrations_jobs.services import SEND_AGAIN_PERMISSION, customers_send_again

ERR_CHOOSE = "Choose the customers: --ids, --file or --skipped (one of them)."
ERR_NOT_STAGED = "Not staged in batch “{batch}”: {ids}."
ERR_FILE = "Cannot read {file}: {error}."
SHOWN_MISSING = 10


class Command(BaseCommand):
    help = "Send chosen customers of a batch again, with a reason that is recorded."
    # As the API's POST batches/<id>/send-again/.
    required_permissions = (SEND_AGAIN_PERMISSION,)

    def add_arguments(self, parser):
        parser.add_argument("batch", help=BATCH_HELP)
        parser.add_argument("--user", required=True, help=USER_HELP + " Who decides.")
        parser.add_argument("--reason", required=True, help="Why they must be sent again.")
        chosen = parser.add_mutually_exclusive_group()
        chosen.add_argument("--ids", default="", help="Legacy ids, separated by commas.")
        chosen.add_argument("--file", default="", help="A text file with one legacy id a line.")
        chosen.add_argument(
            "--skipped",
            action="store_true",
            help="Every customer of the batch that its job skipped.",
        )

    def handle(self, *args, batch, user, reason, ids, file, skipped, **options):
        decider = user_from_argument(user, permissions=self.required_permissions)
        found = batch_from_argument(batch)
        customers = StagedCustomer.objects.filter(batch=found)
        if skipped:
            pks = list(customers.filter(outcome=Outcome.SKIPPED).values_list("pk", flat=True))
        else:
            wanted = self._legacy_ids(ids=ids, file=file)
            by_id = dict(customers.filter(legacy_id__in=wanted).values_list("legacy_id", "pk"))
            missing = [legacy_id for legacy_id in wanted if legacy_id not in by_id]
            if missing:
                shown = ", ".join(missing[:SHOWN_MISSING])
                more = (
                    f" and {len(missing) - SHOWN_MISSING:,} more"
                    if len(missing) > SHOWN_MISSING
                    else ""
                )
                raise CommandError(ERR_NOT_STAGED.format(batch=found.name, ids=shown + more))
            pks = list(by_id.values())
        with service_errors():
            record = customers_send_again(
                batch=found, customer_ids=pks, reason=reason, user=decider
            )
        where = (
            f"job #{record.job_id}"
            if record.job_id
            else f"batch “{found.name}”'s job, once submitted"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"{record.customer_count:,} customer(s) of batch “{found.name}” will be sent "
                f"again by {where}; recorded as decision #{record.pk}."
            )
        )

    @staticmethod
    def _legacy_ids(*, ids: str, file: str) -> list[str]:
        if file:
            try:
                text = Path(file).read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as error:
                raise CommandError(ERR_FILE.format(file=file, error=error)) from error
            values = text.splitlines()
        elif ids:
            values = ids.split(",")
        else:
            raise CommandError(ERR_CHOOSE)
        return list(dict.fromkeys(value.strip() for value in values if value.strip()))
