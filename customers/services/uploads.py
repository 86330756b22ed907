"""Files too big for one request: checked, then staged, by a Celery worker; and the size
limit of every file, whichever door it comes through.

The same resources as the admin's import do the work, so the problems found and the
all-or-nothing rule are the same; only the waiting moves out of the web request. Progress
(rows read) is kept in the shared cache, since the staging transaction hides its own
writes from every other connection until it commits. Every status change of an upload
goes through ``upload_transition`` (the diagram: ``StagingUpload.Status``).

A file whose only problems are ones validation would flag is checked ``ready`` with them
listed; the operator chooses at confirmation whether to stage it and flag those rows or to
stage nothing (``StagingUpload.on_problems``, ``OnProblems``).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from console.errors import InvalidInput, StateConflict
from console.scheduling import task_enqueue
from console.states import rows_transition
from console.types import Operator
from customers.formats import FileReadError, check_xlsx_archive
from customers.models import MappingProfile, OnProblems, StagingBatch, StagingUpload
from customers.resources import StagingResult
from customers.services.batches import batch_lock_editable
from customers.staging import batch_stage_file

Status = StagingUpload.Status
ERR_ON_PROBLEMS = _("“%(value)s” is not a choice for rows with problems.")
ERR_NOT_READY = _("This file is %(status)s; only a checked file that is ready can be staged.")
ERR_FILE_TOO_BIG = _("The file is %(size)s; files up to %(max)s can be staged.")
# How long the rows read so far are kept in the cache.
PROGRESS_TTL_S = 24 * 3600


def upload_size_check(*, size: int) -> None:
    """Refuse a file over ``MIGRATION_UPLOAD_MAX_BYTES`` (admin, API and command alike)."""
    limit = settings.MIGRATION_UPLOAD_MAX_BYTES
    if size > limit:
        raise InvalidInput(
            ERR_FILE_TOO_BIG % {"size": filesizeformat(size), "max": filesizeformat(limit)},
            code="too_big",
        )


def _xlsx_rows(content: bytes) -> int:
    """The ``<row>`` elements of a workbook's first sheet, counted without parsing the XML."""
    try:
        # Refuse a zip bomb before inflating anything: the import then says why.
        check_xlsx_archive(content)
    except FileReadError:
        return 0
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            sheet = next(
                (n for n in archive.namelist() if n.startswith("xl/worksheets/sheet")), None
            )
            if sheet is None:
                return 0
            with archive.open(sheet) as handle:
                return sum(
                    chunk.count(b"<row ") for chunk in iter(lambda: handle.read(1 << 20), b"")
                )
    except zipfile.BadZipFile:
        return 0


def estimate_rows(*, file_name: str, content: bytes) -> int:
    """A quick count of a file's rows, to decide whether it needs a worker."""
    name = file_name.lower()
    if name.endswith(".xlsx"):
        return _xlsx_rows(content)
    if name.endswith(".json"):
        return content.count(b'"id"') or content.count(b"{")
    return content.count(b"\n")


def needs_background(*, file_name: str, content: bytes) -> bool:
    return (
        estimate_rows(file_name=file_name, content=content)
        > settings.MIGRATION_BACKGROUND_IMPORT_ROWS
    )


def _progress_key(upload_id: int) -> str:
    return f"staging-upload-progress:{upload_id}"


def upload_progress(*, upload: StagingUpload) -> int:
    """Rows read so far by the worker handling ``upload``."""
    if not upload.is_active:
        return upload.row_count
    return int(cache.get(_progress_key(upload.pk)) or 0)


def upload_transition(
    *, pk: int, to: str, expected: tuple[str, ...] | None = None, **fields
) -> bool:
    """Move upload ``pk`` to ``to`` if its status allows it (and is one of ``expected``),
    in one conditional UPDATE that also writes ``fields``. True when it moved."""
    moved = rows_transition(
        StagingUpload.objects.filter(pk=pk),
        transitions=StagingUpload.TRANSITIONS,
        to=to,
        expected=expected,
        **fields,
    )
    return bool(moved)


def upload_create(
    *,
    batch: StagingBatch,
    kind: str,
    file_name: str,
    content: bytes,
    user: Operator,
    mapping: MappingProfile | dict | None = None,
) -> StagingUpload:
    """Keep the file and have a worker check it (nothing is staged yet); ``mapping``
    (a profile or a mapping document) is how its columns are read."""
    with transaction.atomic():
        batch_lock_editable(batch=batch)
        upload = StagingUpload(
            batch=batch,
            kind=kind,
            file_name=file_name,
            created_by=user,
            row_estimate=estimate_rows(file_name=file_name, content=content),
            mapping=mapping if isinstance(mapping, MappingProfile) else None,
            mapping_document=mapping.document if isinstance(mapping, MappingProfile) else mapping,
        )
        upload.file.save(file_name, ContentFile(content), save=False)
        upload.save()
        task_enqueue("customers.tasks.upload_check_task", args=(upload.pk,))
    return upload


def _mapping(upload: StagingUpload) -> MappingProfile | dict | None:
    """The mapping the file was given: its profile while the profile is unchanged (so the
    profile is remembered for these headers), else the document as it was."""
    profile = upload.mapping
    if profile is not None and profile.document == upload.mapping_document:
        return profile
    return upload.mapping_document


def _run(upload: StagingUpload, *, dry_run: bool, on_problems: str) -> StagingResult:
    key = _progress_key(upload.pk)
    cache.set(key, 0, PROGRESS_TTL_S)
    # The kept file is read from the storage a slice at a time, never whole.
    with upload.file.open("rb") as handle:
        result = batch_stage_file(
            batch=upload.batch,
            kind=upload.kind,
            file_name=upload.file_name,
            content=handle,
            user=upload.created_by,
            dry_run=dry_run,
            progress=lambda rows: cache.set(key, rows, PROGRESS_TTL_S),
            mapping=_mapping(upload),
            on_problems=on_problems,
        )
    cache.delete(key)
    return result


def _finish(upload: StagingUpload, result: StagingResult, *, success: str) -> StagingUpload:
    """Record what the worker found: ``success``, or ``refused``; with the first problems,
    kept untranslated for whoever reads them later (``StagingUpload.problem_lines``)."""
    problems = [problem.as_json() for problem in result.shown_problems]
    to = Status.REFUSED if result.has_errors() else success
    upload_transition(
        pk=upload.pk,
        to=to,
        row_count=result.row_count,
        problems=problems,
        problem_count=result.problem_count,
        staged=result.staged,
        finished_at=timezone.now() if to in (Status.REFUSED, Status.STAGED) else None,
    )
    upload.refresh_from_db()
    return upload


def upload_check(*, upload_id: int) -> StagingUpload:
    """Read and check the whole file; it becomes ``ready`` (perhaps with problems that
    validation would flag, for the operator to choose at confirmation) or ``refused``."""
    upload = StagingUpload.objects.select_related("batch", "created_by").get(pk=upload_id)
    if upload.status != Status.CHECKING:
        return upload  # delivered twice: the first delivery did the work
    result = _run(upload, dry_run=True, on_problems=OnProblems.FLAG)
    return _finish(upload, result, success=Status.READY)


def upload_confirm(
    *, upload: StagingUpload, user: Operator, on_problems: str = OnProblems.REFUSE
) -> StagingUpload:
    """Stage a checked file; a worker writes it, all or nothing. ``on_problems``: what
    to do with rows that validation would flag (``OnProblems``). ``user``, who confirms
    it, puts data into the batch: one of its stagers, who may not approve it."""
    if on_problems not in OnProblems.values:
        raise InvalidInput(ERR_ON_PROBLEMS % {"value": on_problems}, code="on_problems")
    with transaction.atomic():
        moved = upload_transition(pk=upload.pk, to=Status.STAGING, on_problems=on_problems)
        upload.refresh_from_db()
        if not moved:
            raise StateConflict(ERR_NOT_READY % {"status": upload.get_status_display().lower()})
        upload.batch.stagers.add(user)
        task_enqueue("customers.tasks.upload_stage_task", args=(upload.pk,))
    return upload


def upload_stage(*, upload_id: int) -> StagingUpload:
    """Stage a confirmed file. The upload's row stays locked until the rows are written,
    so a second delivery of the same task waits, then finds the work done."""
    with transaction.atomic():
        upload = (
            StagingUpload.objects.select_for_update()
            .select_related("batch", "created_by")
            .get(pk=upload_id)
        )
        if upload.status != Status.STAGING:
            return upload
        result = _run(upload, dry_run=False, on_problems=upload.on_problems)
        return _finish(upload, result, success=Status.STAGED)


def upload_record(
    *,
    batch: StagingBatch,
    kind: str,
    file_name: str,
    content: bytes | Path | File,
    user: Operator,
    result: StagingResult,
    mapping: MappingProfile | dict | None = None,
) -> StagingUpload:
    """Keep a file staged in one request (admin, API, command) as the batch's record of
    it: who staged what, when, with which mapping; and the file, to write a batch's
    problems back into it (``customers.problem_files``)."""
    upload = StagingUpload(
        batch=batch,
        kind=kind,
        file_name=file_name,
        created_by=user,
        status=Status.STAGED,
        row_estimate=result.row_count,
        row_count=result.row_count,
        staged=result.staged,
        on_problems=result.on_problems,
        mapping=mapping if isinstance(mapping, MappingProfile) else None,
        mapping_document=result.mapping_document,
        finished_at=timezone.now(),
    )
    if isinstance(content, bytes):
        upload.file.save(file_name, ContentFile(content), save=False)
    elif isinstance(content, Path):
        with content.open("rb") as handle:  # copied a block at a time
            upload.file.save(file_name, File(handle), save=False)
    else:
        content.seek(0)
        upload.file.save(file_name, content, save=False)
    upload.save()
    return upload
