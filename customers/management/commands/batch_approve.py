"""``manage.py batch_approve BATCH --user NAME``: approve a validated batch.

The service enforces the approve permission and the four-eyes rule.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from customers.management.arguments import (
    BATCH_HELP,
    batch_from_argument,
    overlap_warnings,
    service_errors,
    user_from_argument,
)
from customers.services import batch_approve


class Command(BaseCommand):
    help = "Approve a validated staging batch (four-eyes rule: not by whoever staged it)."

    def add_arguments(self, parser):
        parser.add_argument("batch", help=BATCH_HELP)
        parser.add_argument("--user", required=True, help="The approving user's username.")

    def handle(self, *args, batch: str, user: str, **options):
        found = batch_from_argument(batch)
        approver = user_from_argument(user)
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
