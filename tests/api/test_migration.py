"""A whole migration through the API alone, sent by a real worker to the sandbox."""

import csv
import io
import time

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from customers.models import StagedCustomer
from migrations_jobs.exports import JOB_CUSTOMER_COLUMNS
from migrations_jobs.sandbox.services import sandbox_received_ids
from tests.worker import WorkerProcess, start_worker_fixture  # noqa: F401

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

KINDS = ("customers", "balances", "devices", "metrics")
POLL_S = 0.2
TIMEOUT_S = 60.0


def script_for(user) -> APIClient:
    """A client that authenticates the way a script does: with the user's token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def poll(client: APIClient, job_id: int, worker: WorkerProcess) -> dict:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        job = client.get(reverse("api:job-detail", args=[job_id])).json()
        if job["is_terminal"]:
            return job
        if time.monotonic() > deadline:
            pytest.fail(f"Job still {job['status']} after {TIMEOUT_S} s:\n{worker.log()[-8000:]}")
        time.sleep(POLL_S)


def test_whole_migration_through_the_api(start_worker, importer, approver, samples):
    approver.user_permissions.add(Permission.objects.get(codename="view_migrationjob"))
    stager, reviewer = script_for(importer), script_for(approver)
    worker = start_worker()

    batch = stager.post(reverse("api:batch-list"), {"name": "api-migration"}, format="json")
    assert batch.status_code == 201, batch.content
    batch_id = batch.json()["id"]
    for kind in KINDS:
        with (samples / f"{kind}.csv").open("rb") as file:
            staged = stager.post(
                reverse("api:batch-files", args=[batch_id]),
                {"kind": kind, "file": file},
                format="multipart",
            )
        assert staged.status_code == 201, staged.content
    summary = stager.post(reverse("api:batch-validate", args=[batch_id])).json()
    assert (summary["valid"], summary["is_validated"]) == (12, True)

    refused = stager.post(reverse("api:batch-approve", args=[batch_id]))
    assert refused.status_code == 403  # the stager holds no approve permission
    approved = reviewer.post(reverse("api:batch-approve", args=[batch_id]))
    assert approved.json()["status"] == "approved"
    submitted = reviewer.post(reverse("api:batch-submit", args=[batch_id]))
    assert submitted.status_code == 201, submitted.content

    job = poll(reviewer, submitted.json()["id"], worker)

    assert job["status"] == "succeeded", worker.log()[-8000:]
    assert (job["total_customers"], job["sent_customers"], job["failed_customers"]) == (12, 12, 0)
    assert job["progress"]["percent"] == 100
    legacy_ids = set(StagedCustomer.objects.values_list("legacy_id", flat=True))
    assert sandbox_received_ids() == legacy_ids
    failed = reviewer.get(reverse("api:job-failed-customers-csv", args=[job["id"]]))
    rows = list(csv.reader(io.StringIO(b"".join(failed.streaming_content).decode())))
    assert rows == [JOB_CUSTOMER_COLUMNS]
