"""``manage.py batch_approve BATCH --user NAME``: approve a validated batch.

The user needs the approve permission, as in the API; the service checks it again with
the four-eyes rule.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from customers.management.arguments import (
    BATCH_HELP,
    USER_HELP,
    batch_from_argument,
    overlap_warnings,
    service_errors,
    user_from_argument,
)
from customers.services import batch_approve
from customers.services.approval import APPROVE_PERMISSION


class Command(BaseCommand):
    help = "Approve a validated staging batch (four-eyes rule: not by whoever staged it)."
    # As the API's POST batches/<id>/approve/.
    required_permissions = (APPROVE_PERMISSION,)

    def add_arguments(self, parser):
        parser.add_argument("batch", help=BATCH_HELP)
        parser.add_argument("--user", required=True, help=USER_HELP + " The approver.")

    def handle(self, *args, batch: str, user: str, **options):
        approver = user_from_argument(user, permissions=self.required_permissions)
        found = batch_from_argument(batch)
        with service_errors():
            approved = batch_approve(batch=found, user=approver)
        self.stdout.write(
            self.style.SUCCESS(
                f"Batch “{approved.name}” is approved by {approver.get_username()}: "
                f"{approved.valid_count:,} customer(s) frozen for submission."
            )
        )
        for line in overlap_warnings(approved):
            self.stdout.write(self.style.WARNING(line))
