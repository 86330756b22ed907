"""The customers services' shared shapes: the guarded transitions of batches and uploads,
scheduling by task name, and the one check per rule (dry run, size limit, editability)."""

import pytest
from django.core.files.base import ContentFile

from console.errors import InvalidInput, StateConflict
from console.scheduling import TaskSend
from customers.models import StagingBatch, StagingUpload
from customers.services import (
    BatchStateError,
    batch_dry_run_check,
    batch_edit_check,
    batch_transition,
    upload_confirm,
    upload_create,
    upload_size_check,
)
from customers.services.batches import (
    ERR_DRY_RUN_STATE,
    ERR_NOT_EDITABLE,
    ERR_NOT_EDITABLE_SUBMITTED,
)
from customers.services.uploads import ERR_FILE_TOO_BIG, ERR_NOT_READY, upload_transition
from tests.factories import BatchFactory

pytestmark = pytest.mark.django_db
Status = StagingBatch.Status
UploadStatus = StagingUpload.Status


def upload_in(batch: StagingBatch, status: str) -> StagingUpload:
    upload = StagingUpload(
        batch=batch, kind="customers", file_name="c.csv", created_by=batch.created_by
    )
    upload.file.save("c.csv", ContentFile(b"id\nc-1\n"), save=False)
    upload.status = status
    upload.save()
    return upload


# --- batch transition ----------------------------------------------------------------------
def test_batch_transition_moves_along_the_map_and_writes_its_fields(importer):
    batch = BatchFactory(created_by=importer)

    moved = batch_transition(pk=batch.pk, to=Status.VALIDATED, validated_by=importer)

    batch.refresh_from_db()
    assert moved is True
    assert (batch.status, batch.validated_by) == (Status.VALIDATED, importer)


def test_batch_transition_off_the_map_does_not_move(importer):
    batch = BatchFactory(created_by=importer)

    assert batch_transition(pk=batch.pk, to=Status.SUBMITTED) is False
    batch.refresh_from_db()
    assert batch.status == Status.DRAFT


def test_batch_transition_outside_the_expected_statuses_does_not_move(importer):
    batch = BatchFactory(created_by=importer, status=Status.APPROVED)

    assert batch_transition(pk=batch.pk, to=Status.DRAFT, expected=(Status.VALIDATED,)) is False


# --- one check per rule --------------------------------------------------------------------
@pytest.mark.parametrize("status", [Status.VALIDATED, Status.APPROVED, Status.SUBMITTED])
def test_dry_run_of_a_validated_batch_is_allowed(importer, status):
    batch_dry_run_check(batch=BatchFactory(created_by=importer, status=status))


def test_dry_run_of_a_draft_is_refused_with_its_message(importer):
    batch = BatchFactory(created_by=importer)

    with pytest.raises(BatchStateError) as raised:
        batch_dry_run_check(batch=batch)

    assert raised.value.messages == [ERR_DRY_RUN_STATE % {"batch": batch.name, "status": "draft"}]


@pytest.mark.parametrize(
    ("status", "message"),
    [(Status.APPROVED, ERR_NOT_EDITABLE), (Status.SUBMITTED, ERR_NOT_EDITABLE_SUBMITTED)],
)
def test_editing_an_approved_or_submitted_batch_is_refused(importer, status, message):
    batch = BatchFactory(created_by=importer, status=status)

    with pytest.raises(BatchStateError) as raised:
        batch_edit_check(batch=batch)

    label = Status(status).label.lower()
    assert raised.value.messages == [message % {"batch": batch.name, "status": label}]


def test_only_an_approved_batch_is_told_to_reopen_first(importer):
    approved = BatchFactory(created_by=importer, status=Status.APPROVED)
    submitted = BatchFactory(created_by=importer, status=Status.SUBMITTED)

    with pytest.raises(BatchStateError) as approved_refusal:
        batch_edit_check(batch=approved)
    with pytest.raises(BatchStateError) as submitted_refusal:
        batch_edit_check(batch=submitted)

    assert "Reopen it first" in approved_refusal.value.messages[0]
    assert "Reopen it first" not in submitted_refusal.value.messages[0]
    assert "cannot be reopened" in submitted_refusal.value.messages[0]


def test_a_file_over_the_size_limit_is_refused(settings):
    settings.MIGRATION_UPLOAD_MAX_BYTES = 10
    upload_size_check(size=10)

    with pytest.raises(InvalidInput) as raised:
        upload_size_check(size=11)

    assert raised.value.messages == [
        ERR_FILE_TOO_BIG % {"size": "11\xa0bytes", "max": "10\xa0bytes"}
    ]


# --- uploads --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "to", "moves"),
    [
        (UploadStatus.CHECKING, UploadStatus.READY, True),
        (UploadStatus.CHECKING, UploadStatus.REFUSED, True),
        (UploadStatus.READY, UploadStatus.STAGING, True),
        (UploadStatus.STAGING, UploadStatus.STAGED, True),
        (UploadStatus.STAGING, UploadStatus.REFUSED, True),
        (UploadStatus.CHECKING, UploadStatus.STAGING, False),
        (UploadStatus.READY, UploadStatus.STAGED, False),
        (UploadStatus.REFUSED, UploadStatus.STAGING, False),
        (UploadStatus.STAGED, UploadStatus.STAGING, False),
    ],
)
def test_upload_transition_follows_the_map(batch, source, to, moves):
    upload = upload_in(batch, source)

    assert upload_transition(pk=upload.pk, to=to) is moves
    upload.refresh_from_db()
    assert upload.status == (to if moves else source)


def test_a_new_upload_is_checked_by_a_task_named_after_commit(
    batch, importer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        upload = upload_create(
            batch=batch, kind="customers", file_name="c.csv", content=b"id\nc-1\n", user=importer
        )

    assert callbacks == [TaskSend(name="customers.tasks.upload_check_task", args=(upload.pk,))]
    assert upload.status == UploadStatus.CHECKING


def test_confirming_a_file_that_is_not_ready_is_refused_and_schedules_nothing(
    batch, importer, django_capture_on_commit_callbacks
):
    upload = upload_in(batch, UploadStatus.REFUSED)

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(StateConflict) as raised:
        upload_confirm(upload=upload, user=importer)

    assert raised.value.messages == [ERR_NOT_READY % {"status": "refused"}]
    assert callbacks == []
    upload.refresh_from_db()
    assert upload.status == UploadStatus.REFUSED


def test_confirming_a_ready_file_schedules_its_staging(
    batch, importer, django_capture_on_commit_callbacks
):
    upload = upload_in(batch, UploadStatus.READY)

    with django_capture_on_commit_callbacks() as callbacks:
        upload_confirm(upload=upload, user=importer)

    assert upload.status == UploadStatus.STAGING
    assert callbacks == [TaskSend(name="customers.tasks.upload_stage_task", args=(upload.pk,))]
