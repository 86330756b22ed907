"""The database goes away for a few seconds while a worker sends a job.

On PostgreSQL the test database stops taking connections (``ALLOW_CONNECTIONS false``) and
the worker's connections are terminated; the server itself and the test's own connections
stay up. On SQLite, another connection holds the write lock for the same time: the worker's
writes wait for it (SQLite's busy timeout), as every writer on one file does.

The worker must carry on by itself once the database is back, and nothing may be marked
sent that Masivo did not take.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from customers.models import Outcome, StagedCustomer
from migrations_jobs.models import JobChunk
from migrations_jobs.sandbox.models import SandboxRequest
from migrations_jobs.sandbox.services import sandbox_configure, sandbox_received_ids
from migrations_jobs.services import job_start
from tests.reliability.conftest import assert_delivered, delivery, figure, timed
from tests.worker import approved_batch, database_url_for_worker, job_wait

OUTAGE_S = 4.0
CHUNK_SIZE = 25


def _maintenance_connection():
    """A connection to the server's ``postgres`` database, from which the test database's
    connections can be switched off."""
    import psycopg

    db = connection.settings_dict
    return psycopg.connect(
        dbname="postgres",
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or None,
        autocommit=True,
    )


@contextlib.contextmanager
def database_unavailable(*, application_name: str) -> Iterator[int]:
    """The database as the worker sees it during an outage; yields how many of the
    worker's connections were cut."""
    if connection.vendor == "sqlite":
        other = connection.copy()
        with other.cursor() as cursor:
            cursor.execute("BEGIN EXCLUSIVE")
            try:
                yield 0
            finally:
                cursor.execute("ROLLBACK")
        other.close()
        return
    name = connection.settings_dict["NAME"]
    with _maintenance_connection() as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            cut = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = %s",
                [name, application_name],
            ).fetchone()[0]
            yield cut
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def marked_sent(batch) -> set[str]:
    return set(
        StagedCustomer.objects.filter(batch=batch, outcome=Outcome.SENT).values_list(
            "legacy_id", flat=True
        )
    )


@pytest.mark.worker
def test_worker_recovers_after_a_database_outage_and_marks_nothing_unsent(
    start_worker, stager, submitter, settings
):
    settings.MIGRATION_CHUNK_SIZE = CHUNK_SIZE
    # 24 chunks: five sent before the outage, the rest after it.
    batch = approved_batch(creator=stager, approver=submitter, size=600, prefix="dbout")
    sandbox_configure(slow_rate=1.0, slow_s=0.15)
    application_name = f"reliab-worker-{uuid.uuid4().hex[:6]}"
    extra = {}
    if connection.vendor != "sqlite":
        extra["DATABASE_URL"] = f"{database_url_for_worker()}?application_name={application_name}"
    worker = start_worker(concurrency=2, **extra)

    with timed() as took:
        job = job_start(batch=batch, user=submitter)
        job_wait(
            job=job,
            until=lambda j: (
                j.sent_customers >= 5 * CHUNK_SIZE
                and JobChunk.objects.filter(job=j, status=JobChunk.Status.SENDING).exists()
            ),
            worker=worker,
        )
        with database_unavailable(application_name=application_name) as cut:
            sent_before = marked_sent(batch)
            time.sleep(OUTAGE_S)
            # Still in the outage: what is marked sent did arrive, and nothing was
            # committed while the worker had no database.
            sent_during = marked_sent(batch) - sent_before
            not_arrived = marked_sent(batch) - sandbox_received_ids()
        ended = timezone.now()
        job = job_wait(job=job, worker=worker, timeout_s=90)

    result = delivery(batch=batch, job=job)
    first_after = (
        SandboxRequest.objects.filter(received_at__gt=ended).order_by("received_at").first()
    )
    resumed_after_s = round((first_after.received_at - ended).total_seconds(), 2)
    errors_logged = worker.log().count("OperationalError")
    figures = figure(
        "database_outage",
        outage_s=OUTAGE_S,
        connections_cut=cut,
        worker_db_errors_logged=errors_logged,
        resumed_after_s=resumed_after_s,
        sent_before=len(sent_before),
        marked_sent_during_outage=len(sent_during),
        marked_sent_not_arrived_during_outage=len(not_arrived),
        seconds=took[0],
        summary=result.text(),
    )
    assert_delivered(result, job=job, figures=figures)
    assert not sent_during, figures
    assert not not_arrived, figures
    assert resumed_after_s < 15, figures
    if connection.vendor != "sqlite":
        # The outage did reach the worker: its connections were cut and it saw the errors.
        assert cut >= 1, figures
        assert errors_logged >= 1, figures


class _Retried(Exception):
    pass


@pytest.mark.parametrize(
    ("fails_at", "retried_with"),
    [("job_wake_take", {"wake": "token-1"}), ("job_process", {})],
    ids=["before the wake-up is taken", "after it is taken"],
)
def test_a_run_without_database_goes_back_to_the_broker(fails_at, retried_with, monkeypatch):
    """The run's retry keeps its wake-up token only while the token is still unused; a run
    whose token was taken comes back as a plain run, so the job is never left waiting."""
    from migrations_jobs import services
    from migrations_jobs.tasks import DATABASE_RETRY_FIRST_S, job_run

    retries = []

    def unreachable(**_kwargs):
        raise OperationalError("connection refused")

    def retry(**kwargs):
        retries.append(kwargs)
        return _Retried()

    monkeypatch.setattr(services, "job_wake_take", lambda **_kwargs: True)
    monkeypatch.setattr(services, "jobs_sweep", lambda **_kwargs: [])
    monkeypatch.setattr(services, fails_at, unreachable)
    monkeypatch.setattr(job_run, "retry", retry)

    with pytest.raises(_Retried):
        job_run.run(41, wake="token-1")

    assert len(retries) == 1
    assert retries[0]["kwargs"] == retried_with
    assert retries[0]["countdown"] == DATABASE_RETRY_FIRST_S
    assert retries[0]["max_retries"] is None
    assert isinstance(retries[0]["exc"], OperationalError)
