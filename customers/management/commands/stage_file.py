"""``manage.py stage_file BATCH KIND PATH --user NAME``: stage one file into a batch.

A batch named BATCH is created when there is none, and kept only if the file is staged;
a number (or ``id:NUMBER``) names an existing batch by its id and is never created. The
user counts as the file's stager for the four-eyes rule. A file with any problem stages
nothing: every problem is printed, one line each, and the command exits non-zero. With
``--on-problems flag``, a file whose only problems are ones validation would flag (a bad
email, a missing required field, a repeated email, a customer another batch already sent)
is staged, its problems printed, for those rows to be fixed or excluded after validation.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from customers.errorfile import error_file
from customers.formats import FileReadError
from customers.management.arguments import (
    BATCH_HELP,
    USER_HELP,
    mapping_from_argument,
    service_errors,
    unknown_batch_text,
    user_from_argument,
)
from customers.models import OnProblems
from customers.selectors import batch_find, batch_reference_id
from customers.services import batch_create, upload_record, upload_size_check
from customers.staging import KINDS, batch_stage_file

IMPORT = "customers.import_stagingbatch"
ERR_NO_FILE = "There is no file at {path}."
ERR_FILE_REFUSED = "{file} has {count} problem(s); nothing was staged."
HINT_FLAG = (
    "Every problem is one validation would flag: stage the file with --on-problems flag "
    "to fix or exclude those rows after validation."
)
NOTE_FLAGGED = "{count} problem(s) left for validation to flag; fix or exclude those rows."
ERR_DRY_RUN_NEW_BATCH = (
    "No batch is named “{batch}”; a dry run checks files against an existing batch."
)


class Command(BaseCommand):
    help = (
        "Stage a customers, balances, devices, metrics, transactions, events or nested file "
        "into a batch."
    )
    # As the API's POST batches/ and batches/<id>/files/.
    required_permissions = (IMPORT,)

    def add_arguments(self, parser):
        parser.add_argument("batch", help=BATCH_HELP + " A name that no batch has is created.")
        parser.add_argument("kind", choices=KINDS, help="What the file holds.")
        parser.add_argument("path", help="A CSV, TSV, XLSX or JSON file (judged by its name).")
        parser.add_argument("--user", required=True, help=USER_HELP + " The stager.")
        parser.add_argument(
            "--time-zone",
            default="UTC",
            help="Time zone of dates without an offset, for a batch this command creates.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Check the file; stage nothing.")
        parser.add_argument(
            "--on-problems",
            choices=OnProblems.values,
            default=OnProblems.REFUSE,
            help=(
                "What to do with rows that validation would flag (a bad email, a missing "
                "required field, a repeated email, a customer already sent): refuse the "
                "whole file (default), or flag: stage it and leave them for validation to "
                "flag. Rows that cannot be stored always refuse the file."
            ),
        )
        parser.add_argument(
            "--errors-file",
            help=(
                "When the file has problems, write it again here (.csv or .xlsx) with each "
                "row's problems in an 'errors' column, to fix in a spreadsheet."
            ),
        )
        parser.add_argument(
            "--mapping",
            help=(
                "How to read a file in another shape: a mapping file (.json) or the name of "
                "a mapping profile. Without it, a file whose headers are not the kind's own "
                "is refused and a suggested mapping is written next to it."
            ),
        )

    def handle(
        self, *args, batch, kind, path, user, time_zone, dry_run, mapping, on_problems, **options
    ):
        errors_file = options.get("errors_file")
        stager = user_from_argument(user, permissions=self.required_permissions)
        file = Path(path)
        if not file.is_file():
            raise CommandError(ERR_NO_FILE.format(path=path))
        mapping = mapping_from_argument(mapping) if mapping else None
        with service_errors():
            upload_size_check(size=file.stat().st_size)
        target = batch_find(reference=batch)
        if target is None and batch_reference_id(batch) is not None:
            raise CommandError(unknown_batch_text(batch))  # an id is never created
        if target is None and dry_run:
            raise CommandError(ERR_DRY_RUN_NEW_BATCH.format(batch=batch))
        # A batch created here for a file that is refused is not kept.
        with transaction.atomic():
            created = target is None
            if created:
                with service_errors():
                    target = batch_create(name=batch, user=stager, time_zone=time_zone)
            result = batch_stage_file(
                batch=target,
                kind=kind,
                file_name=file.name,
                content=file,  # read from disk a slice at a time
                user=stager,
                dry_run=dry_run,
                mapping=mapping,
                on_problems=on_problems,
            )
            if created and result.has_errors():
                transaction.set_rollback(True)
        if created and not result.has_errors():
            self.stdout.write(f"Created batch “{target.name}” (id {target.pk}).")
        if result.has_errors():
            for line in result.shown_messages():
                self.stderr.write(line)
            if result.suggested_mapping is not None:
                self._write_suggestion(file, result.suggested_mapping)
            if errors_file:
                self._write_errors(file, result, Path(errors_file))
            if not result.has_unstorable_problems:
                self.stderr.write(HINT_FLAG)
            raise CommandError(ERR_FILE_REFUSED.format(file=file.name, count=result.problem_count))
        self._report_flagged(result)
        if not dry_run:
            upload_record(
                batch=target,
                kind=kind,
                file_name=file.name,
                content=file,
                user=stager,
                result=result,
                mapping=mapping,
            )
        counts = ", ".join(f"{n:,} {name}" for name, n in result.staged.items())
        verb = "Checked: would stage" if dry_run else "Staged"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {counts} from {file.name} into batch “{target.name}” (id {target.pk})."
            )
        )

    def _report_flagged(self, result) -> None:
        """The problems of a file staged with ``--on-problems flag``, for validation."""
        if not result.problems:
            return
        for line in result.shown_messages():
            self.stderr.write(line)
        self.stderr.write(NOTE_FLAGGED.format(count=result.problem_count))

    def _write_suggestion(self, file: Path, document: dict) -> None:
        """Write the suggested mapping next to the file, for the operator to complete."""
        # Its own name, so that an operator's mapping file beside it is never replaced.
        target = file.with_name(f"{file.stem}.suggested-mapping.json")
        try:
            target.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        except OSError as exc:
            self.stderr.write(f"The suggested mapping could not be written to {target}: {exc}")
            return
        self.stderr.write(
            f"A suggested mapping is in {target}: complete it, then stage the file again "
            f"with --mapping {target}."
        )

    def _write_errors(self, file: Path, result, target: Path) -> None:
        """The file again with each row's problems beside it (CSV or XLSX, by name)."""
        if not any(problem.row is not None for problem in result.problems):
            return
        as_format = "xlsx" if target.suffix.lower() == ".xlsx" else "csv"
        try:
            body, _name, _type = error_file(
                file_name=file.name,
                content=file.read_bytes(),
                problems=result.problems,
                as_format=as_format,
            )
            target.write_bytes(body)
        except (OSError, FileReadError) as exc:
            self.stderr.write(f"The errors file could not be written to {target}: {exc}")
            return
        self.stderr.write(f"The file with its problems beside each row is in {target}.")
