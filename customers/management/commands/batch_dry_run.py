"""``manage.py batch_dry_run BATCH OUT.jsonl``: write every request body a job would send.

One JSON document per line (JSON Lines); nothing is sent. ``-`` writes to standard output.
The file appears only once it is complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from customers.management.arguments import BATCH_HELP, batch_from_argument, service_errors
from customers.management.progress import TerminalProgress
from customers.payload import batch_dry_run_lines
from customers.services import batch_dry_run_check

ERR_CANNOT_WRITE = "Cannot write {path}: {reason}"


class Command(BaseCommand):
    help = "Write the exact request bodies a job would send for a batch, as JSON Lines."

    def add_arguments(self, parser):
        parser.add_argument("batch", help=BATCH_HELP)
        parser.add_argument("out", help="The file to write (JSON Lines), or - for standard output.")

    def handle(self, *args, batch: str, out: str, **options):
        found = batch_from_argument(batch)
        with service_errors():
            batch_dry_run_check(batch=found)
        lines = batch_dry_run_lines(batch=found)
        if out == "-":
            for line in lines:
                self.stdout.write(line.decode("utf-8"), ending="")
            return
        target = Path(out)
        partial = target.with_name(target.name + ".partial")
        shown = TerminalProgress(self.stdout, total=found.valid_count, noun="customers written")
        try:
            with partial.open("wb") as handle:
                count = written = 0
                for line in lines:
                    handle.write(line)
                    count += 1
                    if shown.is_shown:  # counting customers costs a parse: only to show it
                        written += _customers_in(line)
                        shown.update(written)
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(ERR_CANNOT_WRITE.format(path=out, reason=exc.strerror)) from exc
        shown.finish()
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {count:,} request bod{'y' if count == 1 else 'ies'} "
                f"({found.valid_count:,} customers) for batch “{found.name}” to {out}."
            )
        )


def _customers_in(line: bytes) -> int:
    """How many customers one request body (one JSON line) carries."""
    return len(json.loads(line)["customers"])
