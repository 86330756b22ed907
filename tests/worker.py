"""A real Celery worker process beside the sandbox served over real HTTP.

``live_server`` serves the console (and so the sandbox under ``/sandbox/``) from a thread of
the test process, on the test database. The worker started here is a separate process: it
reaches the same database through ``DATABASE_URL`` (the test database's name on PostgreSQL,
the test database's file on SQLite), the same broker, the same cache (so tokens are shared),
and the sandbox through ``MASIVO_BASE_URL`` / ``MASIVO_AUTH_URL``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import F

from config.celery import app as celery_app
from customers.models import StagedCustomer, StagingBatch
from customers.services import batch_approve, batch_transition
from migrations_jobs.models import MigrationJob
from tests.factories import BatchFactory

BASE_DIR = Path(settings.BASE_DIR)
READY_TIMEOUT_S = 60.0
POLL_S = 0.05
# What ``celery worker`` logs once it consumes.
WORKER_READY_LINE = " ready."
REGISTERED = dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=dt.UTC)

ERR_MEMORY_DB = (
    "The worker tests need the SQLite test database in a file that another process can "
    "open: set DATABASES['default']['TEST']['NAME'] in config/settings/test.py."
)

# What every worker runs with unless a test says otherwise: no pacing, short backoffs and
# leases, enough attempts that random faults never exhaust them.
WORKER_DEFAULTS = {
    "MIGRATION_MIN_INTERVAL_S": "0",
    "MIGRATION_HOURLY_CAP": "0",
    "MIGRATION_BACKOFF_BASE_S": "0.05",
    "MIGRATION_BACKOFF_MAX_S": "0.4",
    "MIGRATION_LEASE_S": "3",
    "MIGRATION_MAX_ATTEMPTS": "40",
    "MIGRATION_MAX_IN_FLIGHT": "2",
    "MASIVO_CONNECT_TIMEOUT_S": "2",
    "MASIVO_READ_TIMEOUT_S": "2",
    "MASIVO_TOTAL_TIMEOUT_S": "2.5",
    "MASIVO_TOKEN_REFRESH_MARGIN_S": "300",
}


def database_url_for_worker() -> str:
    """The URL of the database this test runs on, for another process."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        name = str(db["NAME"])
        if connection.is_in_memory_db() or name.startswith("file:"):
            pytest.fail(ERR_MEMORY_DB)
        return f"sqlite:///{Path(name).resolve()}"
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{quote(db['NAME'], safe='')}"


def broker_purge() -> None:
    """Drop every message waiting in the broker's queue (left by an earlier test)."""
    celery_app.control.purge()


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log_path: Path
    # The node name a worker answers remote control under ("" for beat).
    hostname: str = ""
    # What the process is, for messages, and what it logs once it is ready.
    role: str = "worker"
    ready_line: str = WORKER_READY_LINE

    @property
    def is_running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self) -> WorkerProcess:
        """Wait until the process logs ``ready_line``; fail with its log if it exits first
        or takes longer than ``READY_TIMEOUT_S``."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while self.ready_line not in self.log():
            if not self.is_running:
                pytest.fail(f"The {self.role} exited before it was ready:\n{self.log()[-5000:]}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"The {self.role} was not ready in time:\n{self.log()[-5000:]}")
            time.sleep(POLL_S)
        return self

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as a machine that dies."""
        if self.is_running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def worker_environment(*, base_url: str, env: dict[str, object]) -> dict[str, str]:
    """The environment of a worker on the test database and broker, aimed at the sandbox
    served at ``base_url``; ``env`` overrides any variable."""
    environment = dict(os.environ)
    environment.update(WORKER_DEFAULTS)
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url_for_worker(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "MIGRATION_VAR_DIR": str(settings.VAR_DIR),
            "MASIVO_BASE_URL": f"{base_url}/sandbox/api/storefront/v1",
            "MASIVO_AUTH_URL": f"{base_url}/sandbox/auth/authorize",
            "MASIVO_API_KEY": settings.SANDBOX_API_KEY,
            "MASIVO_TOKEN": "",
            "PYTHONPATH": str(BASE_DIR),
            "PYTHONUNBUFFERED": "1",
        }
    )
    environment.update({name: str(value) for name, value in env.items()})
    return environment


def worker_run_dir() -> Path:
    """Where worker and beat processes run and log: inside the test run's var folder."""
    folder = Path(settings.VAR_DIR) / "workers"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def worker_launch(
    *, base_url: str, concurrency: int = 1, loglevel: str = "INFO", **env: object
) -> WorkerProcess:
    """Start ``celery worker`` on the test database and broker, without waiting for it
    (``WorkerProcess.wait_ready``). Remote control reaches it under
    ``WorkerProcess.hostname``."""
    name = uuid.uuid4().hex[:10]
    hostname = f"test-{name}@{socket.gethostname()}"
    log_path = worker_run_dir() / f"{name}.log"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        f"--hostname={hostname}",
    ]
    with log_path.open("wb") as log:
        # The worker's cwd is the var folder, so whatever it writes stays there.
        process = subprocess.Popen(
            command,
            cwd=worker_run_dir(),
            env=worker_environment(base_url=base_url, env=env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return WorkerProcess(process=process, log_path=log_path, hostname=hostname)


@pytest.fixture(name="start_worker")
def start_worker_fixture(masivo: str) -> Iterator[Callable[..., WorkerProcess]]:
    """``start_worker(concurrency=1, loglevel="INFO", MIGRATION_MIN_INTERVAL_S=0.5, ...)``
    starts a worker against the sandbox of ``masivo`` and waits until it is ready; with
    ``ready=False`` it returns at once, so that several processes start side by side
    (``WorkerProcess.wait_ready`` each before use). Every worker started is killed at
    teardown, before the test database is flushed."""
    broker_purge()
    started: list[WorkerProcess] = []

    def start(
        *, concurrency: int = 1, loglevel: str = "INFO", ready: bool = True, **env: object
    ) -> WorkerProcess:
        worker = worker_launch(base_url=masivo, concurrency=concurrency, loglevel=loglevel, **env)
        started.append(worker)
        return worker.wait_ready() if ready else worker

    yield start
    for worker in started:
        worker.kill()
    broker_purge()


# --- data ---------------------------------------------------------------------------------


def validated_batch(
    *, creator, size: int, prefix: str = "legacy", name: str | None = None
) -> StagingBatch:
    """A validated batch of ``size`` valid customers ``<prefix>-000000``, ``<prefix>-000001``..."""
    batch = BatchFactory(created_by=creator, name=name or f"{prefix}-{uuid.uuid4().hex[:8]}")
    StagedCustomer.objects.bulk_create(
        [
            StagedCustomer(
                batch=batch,
                legacy_id=f"{prefix}-{number:06d}",
                name=f"Customer {number}",
                email=f"{prefix}-{number}@example.com",
                registration_date=REGISTERED,
                status="ACTIVE",
                is_valid=True,
            )
            for number in range(size)
        ],
        batch_size=1000,
    )
    StagingBatch.objects.filter(pk=batch.pk).update(customer_count=size, valid_count=size)
    return mark_validated(batch)


def mark_validated(batch: StagingBatch) -> StagingBatch:
    """Move ``batch`` to validated as it stands, recording what validation records: the
    version of the staged rows it judged (a batch whose rows then change is refused at
    approval, as after a real validation)."""
    batch_transition(pk=batch.pk, to=StagingBatch.Status.VALIDATED)  # unless it already is
    StagingBatch.objects.filter(pk=batch.pk).update(validated_version=F("content_version"))
    batch.refresh_from_db()
    return batch


def approved_batch(
    *, creator, approver, size: int, prefix: str = "legacy", name: str | None = None
) -> StagingBatch:
    """A batch of ``size`` valid customers, approved by ``approver`` through the service."""
    batch = validated_batch(creator=creator, size=size, prefix=prefix, name=name)
    return batch_approve(batch=batch, user=approver)


def job_wait(
    *,
    job: MigrationJob,
    until: Callable[[MigrationJob], bool] = lambda job: job.is_terminal,
    timeout_s: float = 60.0,
    worker: WorkerProcess | None = None,
) -> MigrationJob:
    """Poll the job until ``until`` holds; fail with the worker's log after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        job.refresh_from_db()
        if until(job):
            return job
        if time.monotonic() > deadline:
            log = worker.log()[-8000:] if worker else ""
            pytest.fail(
                f"Job #{job.pk} still {job.status} after {timeout_s} s: "
                f"{job.sent_customers} sent, {job.failed_customers} failed of "
                f"{job.total_customers}\n{log}"
            )
        time.sleep(POLL_S)
