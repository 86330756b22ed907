"""``manage.py batch_reconcile BATCH --user NAME [--csv FILE]``: the batch's history against
its balances (``customers.reconciliation``): per reward, the totals staged from the files,
to send and sent; the customers whose transactions do not add up to their balance; those
with history but no balance, and the reverse.

Exits with status 1 when any customer's transactions do not match its balance, so a
script can stop there. The report names customers: the user needs the permission to see
them, as in the admin and the API.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from customers.management.arguments import (
    BATCH_HELP,
    USER_HELP,
    batch_from_argument,
    user_from_argument,
)
from customers.payload.writing import number_text
from customers.reconciliation import batch_reconciliation, reconciliation_csv
from customers.services import CUSTOMER_DATA_PERMISSION, customer_data_log

VIEW_BATCH = "customers.view_stagingbatch"
ERR_MISMATCHED = "{count} customer balance(s) of batch “{batch}” do not match their transactions."
ERR_CANNOT_WRITE = "Cannot write {path}: {reason}"
# The customers a list names on the terminal before "and N more" (the CSV has them all).
LISTED = 20


class Command(BaseCommand):
    help = "Reconcile a batch's transactions with its balances; exit 1 on any mismatch."
    # As the API's GET batches/<id>/reconciliation/: the report names customers.
    required_permissions = (VIEW_BATCH, CUSTOMER_DATA_PERMISSION)

    def add_arguments(self, parser):
        parser.add_argument("batch", help=BATCH_HELP)
        parser.add_argument("--user", required=True, help=USER_HELP)
        parser.add_argument("--csv", help="Also write the whole report to this CSV file.")

    def handle(self, *args, batch: str, user: str, csv: str | None = None, **options):
        reader = user_from_argument(user, permissions=self.required_permissions)
        found = batch_from_argument(batch)
        report = batch_reconciliation(batch=found)
        customer_data_log(user=reader, what="reconciliation", batch_id=found.pk)
        self._print(report)
        if csv:
            try:
                Path(csv).write_text("".join(reconciliation_csv(report)), encoding="utf-8")
            except OSError as exc:
                raise CommandError(ERR_CANNOT_WRITE.format(path=csv, reason=exc.strerror)) from exc
            self.stdout.write(f"The report is in {csv}.")
        if not report.is_matched:
            raise CommandError(
                ERR_MISMATCHED.format(count=len(report.mismatches), batch=found.name)
            )
        self.stdout.write(self.style.SUCCESS(f"Batch “{found.name}” reconciles."))

    def _print(self, report) -> None:
        write = self.stdout.write
        if not report.rewards:
            write("No balances and no transactions are staged in this batch.")
        for r in report.rewards:
            write(
                f"Reward {r.reward_id}: balances {number_text(r.balances_in_files)} and "
                f"transactions {number_text(r.transactions_in_files)} in the files; "
                f"to send {number_text(r.balances_to_send)} and "
                f"{number_text(r.transactions_to_send)}; sent {number_text(r.balances_sent)} "
                f"and {number_text(r.transactions_sent)}."
            )
        for m in report.mismatches[:LISTED]:
            write(
                f"Customer “{m.legacy_id}”, reward {m.reward_id}: balance "
                f"{number_text(m.balance)}, transactions {number_text(m.total)}, difference "
                f"{number_text(m.difference)}."
            )
        if len(report.mismatches) > LISTED:
            write(f"… and {len(report.mismatches) - LISTED:,} more mismatches (see --csv).")
        for title, ids in (
            ("Customers with history but no balance", report.history_without_balance),
            ("Customers with a balance but no transactions", report.balance_without_transactions),
        ):
            if ids:
                more = f" and {len(ids) - LISTED:,} more" if len(ids) > LISTED else ""
                listed = ", ".join(f"“{i}”" for i in ids[:LISTED])
                write(f"{title} ({len(ids):,}): {listed}{more}.")
