"""A whole migration through the management commands, sent by a real worker."""

from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command

from customers.models import StagedCustomer
from migrations_jobs.models import MigrationJob
from migrations_jobs.sandbox.services import sandbox_received_ids
from tests.worker import start_worker_fixture  # noqa: F401

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

KINDS = ("customers", "balances", "devices", "metrics")


def test_whole_migration_through_the_commands(start_worker, importer, approver, samples):
    importer.user_permissions.add(Permission.objects.get(codename="approve_stagingbatch"))
    worker = start_worker()
    for kind in KINDS:
        call_command(
            "stage_file", "cli-migration", kind, str(samples / f"{kind}.csv"),
            user="importer", stdout=StringIO(),
        )  # fmt: skip
    call_command("batch_validate", "cli-migration", user="importer", stdout=StringIO())
    with pytest.raises(CommandError, match="Four-eyes rule"):
        call_command("batch_approve", "cli-migration", user="importer")
    call_command("batch_approve", "cli-migration", user="approver", stdout=StringIO())
    out = StringIO()

    call_command(
        "batch_submit", "cli-migration", user="approver", wait=True, interval=0.1, timeout=60,
        stdout=out,
    )  # fmt: skip

    job = MigrationJob.objects.get()
    assert job.status == MigrationJob.Status.SUCCEEDED, worker.log()[-8000:]
    lines = out.getvalue().splitlines()
    assert lines[-2] == "[####################] 12/12 customers sent, 0 failed"
    assert lines[-1] == f"Job #{job.pk} succeeded: 12 customers sent to Masivo."
    assert sandbox_received_ids() == set(StagedCustomer.objects.values_list("legacy_id", flat=True))
    status = StringIO()
    call_command("job_status", str(job.pk), stdout=status)
    assert status.getvalue().splitlines()[0].endswith("): succeeded")
