"""The broker loses every message while a job waits between two runs.

A job's state lives in the database; the broker only carries the runs that act on it. Here
the job's next run (a wake-up after a 429's Retry-After) is in the broker when the broker
loses everything: on Redis, the test's database is flushed and every connection to it
dropped, which is what a restart of a Redis without persistence does to the console (the
machine's Redis itself is left alone); on the filesystem broker, the queue folder's message
files are deleted. To make sure the run is in the broker and not in the worker's memory at
that moment, the worker stops taking messages from the queue just before, and takes them
again right after.

Nothing in the worker notices a lost message: the job is picked up again by the periodic
jobs sweep that ``celery beat`` publishes (CELERY_BEAT_SCHEDULE, every minute in
production, every second here), which revives an active job that shows no sign of life for
MIGRATION_LEASE_S.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from config.celery import app as celery_app
from migrations_jobs.models import MigrationJob
from migrations_jobs.sandbox.models import SandboxRequest
from migrations_jobs.sandbox.services import sandbox_configure, sandbox_script
from migrations_jobs.services import job_start
from tests.reliability.conftest import assert_delivered, delivery, figure, is_redis, timed
from tests.worker import approved_batch, job_wait

pytestmark = pytest.mark.worker

CUSTOMERS = 160
CHUNK_SIZE = 20
LEASE_S = 3
RETRY_AFTER_S = 2
ANSWER_DELAY_S = 2.0
QUEUE = "celery"
REVIVED_LINE = "Sweep enqueued runs for jobs"


def queued_messages() -> int:
    """Messages waiting in the broker's task queue."""
    if is_redis():
        import redis

        return redis.Redis.from_url(settings.CELERY_BROKER_URL).llen(QUEUE)
    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    return sum(1 for path in folder.iterdir() if path.name.endswith(f".{QUEUE}.msg"))


def broker_lose_everything() -> int:
    """Flush and disconnect (Redis) or empty the queue folder (filesystem); returns how
    many task messages were lost."""
    lost = queued_messages()
    if is_redis():
        import redis

        server = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        db = server.connection_pool.connection_kwargs.get("db", 0)
        server.flushdb()
        # Only the clients of the test's database: other databases are other people's.
        ours = [c["id"] for c in server.client_list() if int(c.get("db", -1)) == int(db)]
        for client_id in ours:
            server.client_kill_filter(_id=client_id)
    else:
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        for key in ("data_folder_in", "processed_folder"):
            for path in Path(options[key]).iterdir():
                if path.is_file():
                    path.unlink()
    return lost


def consuming(worker, *, on: bool) -> None:
    """Stop or restart the worker's consumption of the task queue (remote control)."""
    command = celery_app.control.add_consumer if on else celery_app.control.cancel_consumer
    with celery_app.connection_for_write() as probe:
        connection_errors = probe.connection_errors
    for _attempt in range(20):
        try:
            replies = command(QUEUE, destination=[worker.hostname], reply=True, timeout=2)
        except connection_errors:
            # This process's own connection to the broker was dropped too: reconnect.
            replies = []
        if replies:
            return
        time.sleep(0.25)
    pytest.fail(f"The worker did not answer remote control:\n{worker.log()[-3000:]}")


def holding(worker) -> dict[str, list]:
    """The tasks the worker is running and holding for later (remote control)."""
    inspect = celery_app.control.inspect(destination=[worker.hostname], timeout=2)
    return {
        "active": (inspect.active() or {}).get(worker.hostname, []),
        "scheduled": (inspect.scheduled() or {}).get(worker.hostname, []),
    }


def holding_settled(worker, *, within_s: float = 5.0) -> dict[str, list]:
    """What the worker holds once its run has returned: the wake-up is queued just before
    the run ends, so the run may still be finishing (and be acknowledged) a moment later."""
    deadline = time.monotonic() + within_s
    held = holding(worker)
    while (held["active"] or held["scheduled"]) and time.monotonic() < deadline:
        time.sleep(0.05)
        held = holding(worker)
    return held


def test_job_finishes_after_the_broker_lost_its_messages(
    start_worker, start_beat, stager, submitter, settings
):
    settings.MIGRATION_CHUNK_SIZE = CHUNK_SIZE
    batch = approved_batch(creator=stager, approver=submitter, size=CUSTOMERS, prefix="broker")
    sandbox_configure(slow_rate=1.0, slow_s=0.1)
    # The third request is answered 429, late: the job then waits RETRY_AFTER_S, too long
    # to sleep in the worker, so its run ends and a wake-up goes to the broker. The delay
    # leaves the time to stop the worker's consumption before that happens.
    sandbox_script(status_code=201)
    sandbox_script(status_code=201)
    sandbox_script(status_code=429, retry_after_s=RETRY_AFTER_S, delay_s=ANSWER_DELAY_S)
    # The worker and beat start side by side; the job starts once both run.
    worker = start_worker(
        MIGRATION_LEASE_S=LEASE_S, MASIVO_READ_TIMEOUT_S=5, MASIVO_TOTAL_TIMEOUT_S=6, ready=False
    )
    beat = start_beat(interval_s=1.0, ready=False)
    for process in (worker, beat):
        process.wait_ready()

    with timed() as took:
        job = job_start(batch=batch, user=submitter)
        job_wait(
            job=job,
            until=lambda j: SandboxRequest.objects.filter(status_code=429).exists(),
            worker=worker,
        )
        consuming(worker, on=False)
        # The 429 is recorded, the run hands over to a wake-up, and nothing is in flight.
        job_wait(
            job=job,
            until=lambda j: j.wake_token != "" and queued_messages() >= 1,
            worker=worker,
        )
        held = holding_settled(worker)
        assert held == {"active": [], "scheduled": []}, f"the worker still holds {held}"
        requests_before = SandboxRequest.objects.count()
        revivals_before = worker.log().count(REVIVED_LINE)
        lost = broker_lose_everything()
        lost_at = timezone.now()
        consuming(worker, on=True)
        job = job_wait(job=job, worker=worker, timeout_s=60)

    first_after = (
        SandboxRequest.objects.filter(received_at__gt=lost_at).order_by("received_at").first()
    )
    stalled_s = round((first_after.received_at - lost_at).total_seconds(), 2)
    result = delivery(batch=batch, job=job)
    figures = figure(
        "broker_lost",
        messages_lost=lost,
        stalled_s=stalled_s,
        seconds=took[0],
        requests_before_loss=requests_before,
        summary=result.text(),
    )
    assert lost >= 1, figures
    assert_delivered(result, job=job, figures=figures)
    assert job.status == MigrationJob.Status.SUCCEEDED, figures
    # Revived by the sweep beat publishes, once the job had shown no life for a lease.
    assert worker.log().count(REVIVED_LINE) > revivals_before, figures
    assert stalled_s >= LEASE_S - RETRY_AFTER_S, figures
