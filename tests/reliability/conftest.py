"""Fault injection against real services: the database and broker of the run (SQLite and the
filesystem broker, or PostgreSQL and Redis), real Celery worker processes, and the sandbox
served over loopback by ``live_server``.

Each test states the figure it measured in its assertion messages and records it with
:func:`figure`, so that a run leaves ``var/test/reliability/figures.jsonl`` behind for
docs/RELIABILITY.md.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from customers.models import Outcome, StagedCustomer, StagingBatch
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob
from migrations_jobs.sandbox.models import SandboxRequest
from migrations_jobs.sandbox.services import sandbox_arrivals, sandbox_received_ids
from tests.api.conftest import api, as_user, upload  # noqa: F401 (fixtures)
from tests.factories import UserFactory
from tests.worker import (  # noqa: F401 (start_worker_fixture is a fixture)
    WorkerProcess,
    start_worker_fixture,
    worker_environment,
    worker_run_dir,
)

OPERATOR_PERMS = [
    "customers.approve_stagingbatch",
    "customers.submit_stagingbatch",
    "migrations_jobs.cancel_migrationjob",
    "migrations_jobs.retry_migrationjob",
    "migrations_jobs.view_migrationjob",
]
UNKNOWN_OUTCOMES = (ChunkAttempt.Outcome.RETRY_UNKNOWN, ChunkAttempt.Outcome.LEASE_EXPIRED)


def run_setup() -> str:
    """``postgresql+redis`` or ``sqlite+filesystem``: the services this run uses."""
    broker = settings.CELERY_BROKER_URL.split(":", 1)[0]
    return f"{connection.vendor}+{broker}"


def is_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith("redis")


def figure(test: str, **values) -> str:
    """Record a test's measured figures (one JSON line per run) and return them as text
    for the test's assertion messages."""
    folder = Path(settings.VAR_DIR) / "reliability"
    folder.mkdir(parents=True, exist_ok=True)
    line = {"test": test, "setup": run_setup(), **values}
    with (folder / "figures.jsonl").open("a") as handle:
        handle.write(json.dumps(line, default=str) + "\n")
    return ", ".join(f"{name}={value}" for name, value in values.items())


# --- worker and beat processes ---------------------------------------------------------------


# Beat as deployed (``celery beat``), with the sweep every ``interval`` seconds instead of
# every minute, so a test need not wait for it.
BEAT_PROGRAM = """
import sys
from config.celery import app
app.conf.beat_schedule["migration-jobs-sweep"]["schedule"] = float(sys.argv[1])
app.start(["beat", "--loglevel=INFO", "--schedule", sys.argv[2]])
"""
# What beat logs once it runs.
BEAT_READY_LINE = "beat: Starting"


def beat_launch(*, base_url: str, interval_s: float) -> WorkerProcess:
    """Start ``celery beat`` publishing the jobs sweep every ``interval_s`` seconds, without
    waiting for it (``WorkerProcess.wait_ready``)."""
    name = uuid.uuid4().hex[:10]
    log_path = worker_run_dir() / f"beat-{name}.log"
    schedule = worker_run_dir() / f"beat-{name}.schedule"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", BEAT_PROGRAM, str(interval_s), str(schedule)],
            cwd=worker_run_dir(),
            env=worker_environment(base_url=base_url, env={}),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return WorkerProcess(
        process=process, log_path=log_path, role="beat", ready_line=BEAT_READY_LINE
    )


@pytest.fixture
def start_beat(masivo: str) -> Iterator[Callable[..., WorkerProcess]]:
    """``start_beat(interval_s=1.0)`` starts beat and waits until it runs; with
    ``ready=False`` it returns at once (``WorkerProcess.wait_ready`` before relying on it).
    Every beat started is killed at teardown."""
    started: list[WorkerProcess] = []

    def start(*, interval_s: float, ready: bool = True) -> WorkerProcess:
        beat = beat_launch(base_url=masivo, interval_s=interval_s)
        started.append(beat)
        return beat.wait_ready() if ready else beat

    yield start
    for process in started:
        process.kill()


# --- people and checks -----------------------------------------------------------------------


@pytest.fixture
def stager(transactional_db):
    return UserFactory(username="stager")


@pytest.fixture
def submitter(transactional_db):
    return UserFactory(username="submitter", perms=OPERATOR_PERMS)


@dataclass(frozen=True)
class Delivery:
    """What a job delivered, counted at both ends."""

    staged: int
    arrived: int
    lost: int
    marked_sent_not_arrived: int
    duplicate_receipts: int
    resent_requests: int
    retried_unknown: int
    unknown_receipts_bound: int
    requests: int
    max_attempts: int

    def text(self) -> str:
        return (
            f"lost={self.lost}, duplicates={self.duplicate_receipts} customer receipts in "
            f"{self.resent_requests} request(s), retried after an unknown outcome="
            f"{self.retried_unknown} chunk(s) (bound {self.unknown_receipts_bound} receipts), "
            f"requests={self.requests}, most attempts of a chunk={self.max_attempts}"
        )


def delivery(*, batch: StagingBatch, job: MigrationJob) -> Delivery:
    """Count lost customers (staged, not at the sandbox), customers marked sent that never
    arrived, and duplicates against the chunks retried after an unknown outcome."""
    job.refresh_from_db()
    staged = set(batch.customers.values_list("legacy_id", flat=True))
    arrived = sandbox_received_ids()
    marked_sent = set(
        StagedCustomer.objects.filter(batch=batch, outcome=Outcome.SENT).values_list(
            "legacy_id", flat=True
        )
    )
    arrivals = sandbox_arrivals()
    chunks = JobChunk.objects.filter(job=job)
    bound = sum(c.unknown_outcome_retries * c.customer_count for c in chunks)
    return Delivery(
        staged=len(staged),
        arrived=len(arrived & staged),
        lost=len(staged - arrived),
        marked_sent_not_arrived=len(marked_sent - arrived),
        duplicate_receipts=arrivals["duplicate_receipts"],
        resent_requests=SandboxRequest.objects.filter(
            is_accepted=True, duplicate_count__gt=0
        ).count(),
        retried_unknown=job.retried_unknown_count,
        unknown_receipts_bound=bound,
        requests=arrivals["requests"],
        max_attempts=max(chunks.values_list("attempts", flat=True), default=0),
    )


def assert_delivered(result: Delivery, *, job: MigrationJob, figures: str) -> None:
    """The delivery promise: nothing lost, nothing marked sent that did not arrive, and
    every duplicate explained by a chunk retried after an unknown outcome."""
    assert job.status == MigrationJob.Status.SUCCEEDED, figures
    assert result.lost == 0, figures
    assert result.marked_sent_not_arrived == 0, figures
    assert job.sent_customers == result.staged, figures
    assert result.resent_requests <= result.retried_unknown, figures
    assert result.duplicate_receipts <= result.unknown_receipts_bound, figures
    assert not StagedCustomer.objects.filter(batch=job.batch).exclude(outcome=Outcome.SENT).exists()


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as took: ...``; ``took[0]`` is the elapsed seconds afterwards."""
    took: list[float] = []
    started = time.monotonic()
    try:
        yield took
    finally:
        took.append(round(time.monotonic() - started, 2))
