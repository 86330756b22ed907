from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from customers.models import StagingBatch
from customers.services import batch_approve
from migrations_jobs.management.commands import batch_submit
from migrations_jobs.management.commands.job_status import progress_line
from migrations_jobs.models import MigrationJob
from migrations_jobs.services import SUBMIT_PERMISSION
from tests.factories import BatchFactory, CustomerFactory, UserFactory
from tests.worker import mark_validated

pytestmark = pytest.mark.django_db
Status = MigrationJob.Status


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def approved(importer, approver) -> StagingBatch:
    batch = BatchFactory(name="approved", created_by=importer)
    for number in range(4):
        CustomerFactory(batch=batch, legacy_id=f"c-{number}", is_valid=True)
    mark_validated(batch)
    return batch_approve(batch=batch, user=approver)


@pytest.fixture
def worker_stand_in(monkeypatch):
    """Instead of sleeping between polls, move the job along as a worker would:
    ``worker_stand_in(state, state, ...)``, one per poll; later polls change nothing."""

    def script(*states: dict) -> None:
        steps = iter(states)

        def sleep(_seconds: float) -> None:
            state = next(steps, None)
            if state:
                MigrationJob.objects.update(**state)

        monkeypatch.setattr(batch_submit.time, "sleep", sleep)

    return script


def test_progress_line_draws_the_bar_and_counts():
    progress = {"percent": 40, "sent": 2000, "failed": 0, "total": 5000}
    assert progress_line(progress) == (
        "[########............] 2,000/5,000 customers sent, 0 failed"
    )


# --- batch_submit ---------------------------------------------------------------------------
def test_submit_creates_the_job_and_says_how_to_follow_it(approver, approved):
    out = StringIO()
    call_command("batch_submit", approved.name, user="approver", stdout=out)

    job = MigrationJob.objects.get()
    assert (job.batch, job.started_by, job.status) == (approved, approver, Status.QUEUED)
    assert out.getvalue().splitlines() == [
        f"Submitted batch “approved” (id {approved.pk}): job #{job.pk}, 4 customers in 1 chunk(s).",
        f"Follow it with: manage.py job_status {job.pk}",
    ]


def test_submit_needs_the_submit_permission(importer, approved):
    # As the API answers it: the permission named, before the service is asked.
    with pytest.raises(CommandError, match=SUBMIT_PERMISSION):
        call_command("batch_submit", str(approved.pk), user="importer", stdout=StringIO())
    assert not MigrationJob.objects.exists()


def test_submitting_a_draft_is_refused(approver, importer):
    draft = BatchFactory(name="draft", created_by=importer)
    with pytest.raises(CommandError, match="only an approved batch can be submitted"):
        call_command("batch_submit", draft.name, user="approver", stdout=StringIO())


def test_submit_refuses_an_unknown_batch_or_user(approver, approved):
    with pytest.raises(CommandError, match="No batch is named “nope”"):
        call_command("batch_submit", "nope", user="approver")
    with pytest.raises(CommandError, match="No active user is named “ghost”"):
        call_command("batch_submit", approved.name, user="ghost")


def test_wait_follows_the_job_and_succeeds_only_when_it_succeeded(
    approver, approved, worker_stand_in
):
    worker_stand_in(
        {"status": Status.RUNNING, "sent_customers": 2},
        {"status": Status.SUCCEEDED, "sent_customers": 4},
    )
    out = StringIO()

    call_command("batch_submit", approved.name, user="approver", wait=True, stdout=out)

    assert out.getvalue().splitlines()[1:] == [
        "[....................] 0/4 customers sent, 0 failed",
        "[##########..........] 2/4 customers sent, 0 failed",
        "[####################] 4/4 customers sent, 0 failed",
        f"Job #{MigrationJob.objects.get().pk} succeeded: 4 customers sent to Masivo.",
    ]


def test_wait_exits_non_zero_when_the_job_partially_failed(approver, approved, worker_stand_in):
    worker_stand_in(
        {"status": Status.PARTIALLY_FAILED, "sent_customers": 3, "failed_customers": 1},
    )
    with pytest.raises(CommandError) as refused:
        call_command("batch_submit", approved.name, user="approver", wait=True, stdout=StringIO())
    job_id = MigrationJob.objects.get().pk
    assert str(refused.value) == (
        f"Job #{job_id} ended partially failed: 3 sent, 1 failed of 4 customers. "
        f"See manage.py job_status {job_id}."
    )


def test_wait_redraws_the_bar_in_place_on_a_terminal(approver, approved, worker_stand_in):
    worker_stand_in({"status": Status.SUCCEEDED, "sent_customers": 4})
    out = Terminal()

    call_command("batch_submit", approved.name, user="approver", wait=True, stdout=out)

    drawn = out.getvalue().split("\n")[1]
    assert drawn == (
        "\r[....................] 0/4 customers sent, 0 failed"
        "\r[####################] 4/4 customers sent, 0 failed"
    )


def test_wait_gives_up_after_the_timeout_and_says_the_job_carries_on(
    approver, approved, worker_stand_in
):
    worker_stand_in({"status": Status.RUNNING, "started_at": timezone.now()})
    with pytest.raises(CommandError, match=r"Stopped waiting after \d+ s; job #\d+ is still"):
        call_command(
            "batch_submit", approved.name, user="approver", wait=True, timeout=0.001,
            stdout=StringIO(),
        )  # fmt: skip


def test_wait_refuses_a_non_positive_interval(approver, approved):
    with pytest.raises(CommandError, match="--interval must be a positive"):
        call_command("batch_submit", approved.name, user="approver", wait=True, interval=0)
    assert not MigrationJob.objects.exists()


# --- job_status ------------------------------------------------------------------------------
def test_job_status_prints_status_progress_and_chunks(approver, approved):
    call_command("batch_submit", approved.name, user="approver", stdout=StringIO())
    job = MigrationJob.objects.get()
    out = StringIO()

    call_command("job_status", str(job.pk), stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == f"Job #{job.pk} of batch “approved” (id {approved.pk}): queued"
    assert lines[1] == "[....................] 0/4 customers sent, 0 failed (0%)"
    assert lines[2] == (
        "Chunks: 0 waiting, 1 pending, 0 sending, 0 sent, 0 failed, 0 split, 0 skipped, 0 held, "
        "0 cancelled."
    )
    assert lines[4].startswith("Started by approver: created ")


def test_job_status_refuses_an_unknown_job(db):
    with pytest.raises(CommandError, match="There is no job #42."):
        call_command("job_status", "42")


def test_job_status_refuses_a_job_that_is_not_a_number(db):
    with pytest.raises(CommandError, match="invalid int value"):
        call_command("job_status", "latest")


def test_submit_refuses_an_inactive_user(approved):
    clerk = UserFactory(username="clerk", is_active=False, perms=["customers.submit_stagingbatch"])
    with pytest.raises(CommandError, match="No active user is named “clerk”"):
        call_command("batch_submit", approved.name, user=clerk.username)
