"""``manage.py batch_dry_run BATCH OUT.jsonl --user NAME [--endpoint KIND]``: write every
request body a job would send to one endpoint (``customers`` by default, ``transactions``
or ``events``).

One JSON document per line (JSON Lines); nothing is sent. ``-`` writes to standard output.
The file appears only once it is complete. The bodies are customers' personal data: the
user needs the permission to see them, as in the admin and the API, and the download is
logged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from customers.management.arguments import (
    BATCH_HELP,
    USER_HELP,
    batch_from_argument,
    service_errors,
    user_from_argument,
)
from customers.management.progress import TerminalProgress
from customers.payload.history import (
    CUSTOMERS,
    ENDPOINTS,
    dry_run_label,
    dry_run_lines,
    history_send_queryset,
)
from customers.services import CUSTOMER_DATA_PERMISSION, batch_dry_run_check, customer_data_log

ERR_CANNOT_WRITE = "Cannot write {path}: {reason}"
VIEW_BATCH = "customers.view_stagingbatch"


class Command(BaseCommand):
    help = "Write the exact request bodies a job would send for a batch, as JSON Lines."
    # As the API's GET batches/<id>/dry-run/: the bodies are customers' data.
    required_permissions = (VIEW_BATCH, CUSTOMER_DATA_PERMISSION)

    def add_arguments(self, parser):
        parser.add_argument("batch", help=BATCH_HELP)
        parser.add_argument("out", help="The file to write (JSON Lines), or - for standard output.")
        parser.add_argument("--user", required=True, help=USER_HELP)
        parser.add_argument(
            "--endpoint",
            choices=ENDPOINTS,
            default=CUSTOMERS,
            help="Which endpoint's bodies: customers (the default), transactions or events.",
        )

    def handle(self, *args, batch: str, out: str, user: str, endpoint: str = CUSTOMERS, **options):
        reader = user_from_argument(user, permissions=self.required_permissions)
        found = batch_from_argument(batch)
        with service_errors():
            batch_dry_run_check(batch=found)
        customer_data_log(user=reader, what=dry_run_label(endpoint), batch_id=found.pk)
        lines = dry_run_lines(endpoint=endpoint, batch=found)
        if endpoint == CUSTOMERS:
            total = found.valid_count
        else:
            total = history_send_queryset(kind=endpoint, batch=found).count()
        if out == "-":
            for line in lines:
                self.stdout.write(line.decode("utf-8"), ending="")
            return
        target = Path(out)
        partial = target.with_name(target.name + ".partial")
        noun = "customers written" if endpoint == CUSTOMERS else f"{endpoint} written"
        shown = TerminalProgress(self.stdout, total=total, noun=noun)
        try:
            with partial.open("wb") as handle:
                count = written = 0
                for line in lines:
                    handle.write(line)
                    count += 1
                    if shown.is_shown:  # counting costs a parse: only to show it
                        written += _entries_in(line, endpoint)
                        shown.update(written)
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(ERR_CANNOT_WRITE.format(path=out, reason=exc.strerror)) from exc
        shown.finish()
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {count:,} {'' if endpoint == CUSTOMERS else endpoint + ' '}"
                f"request bod{'y' if count == 1 else 'ies'} ({total:,} "
                f"{'customers' if endpoint == CUSTOMERS else endpoint}) "
                f"for batch “{found.name}” to {out}."
            )
        )


def _entries_in(line: bytes, endpoint: str) -> int:
    """How many customers (or transactions, events) one request body carries."""
    customers = json.loads(line)["customers"]
    if endpoint == CUSTOMERS:
        return len(customers)
    return sum(len(customer[endpoint]) for customer in customers)
