"""The dress rehearsal: the operator's whole path from the legacy files to Masivo (the
sandbox), on PostgreSQL and Redis, timed phase by phase with each phase's peak memory.

The console runs throughout, as in production: gunicorn (2 processes) serves it and the
sandbox, a Celery worker (2 processes, ``MIGRATION_MAX_IN_FLIGHT`` 2) sends, with no
pacing (``MIGRATION_MIN_INTERVAL_S`` 0, no hourly cap) and the sandbox's limiter off. Two
operators made by ``operator_create``, a stager and a reviewer, take the benchmark's files
(``data.files``) through the management commands, each command a process of its own, one
after another, as from a shell:

1. stage: ``stage_file BATCH KIND FILE --user STAGER`` for the customers, balances,
   devices and metrics files (``bench_big.stage_file_command``); seconds of the four
   commands together, rows per second, each command's peak;
2. validate: ``batch_validate BATCH --user STAGER``;
3. approve: ``batch_approve BATCH --user REVIEWER`` (the four-eyes rule keeps the stager
   out);
4. submit: ``batch_submit BATCH --user REVIEWER``, without ``--wait``: from the command's
   start to its line "Submitted batch …", which it prints once the job and its chunks are
   committed (the command's peak is that of the whole process);
5. to the first request: from that line to the first migrate request's arrival at the
   sandbox (its ``received_at``, stamped by the sandbox's first middleware);
6. sending: from that arrival to the job's ``finished_at``; customers per second, the
   median time a request took at the sandbox (its ``duration_s``, from the view's start to
   the customers written) and for the worker (the attempt's ``duration_s``: the client's
   whole call, pacing fence, request and answer), and the CPU seconds the worker's and the
   web server's processes used from the submission to the job's end.

Each command's peak memory is its own (``ru_maxrss``, read by ``os.wait4`` when it ends);
the worker's and the web server's are the highest ``VmHWM`` of their processes over the
whole rehearsal, read before they stop (both idle until the job is submitted). End to end:
from the first ``stage_file``'s start to the job's end. The job must succeed and the
sandbox must hold every staged customer exactly once, with no request refused; the case
fails otherwise.

``rehearsal``: 100,000 customers, in ``make bench`` (PostgreSQL only, one pass, about a
minute). ``rehearsal_big``: 1,000,000 customers (about 18 minutes, and two more the first
time, to write the files), only when asked for:

    make bench BENCH_ARGS="--only rehearsal-big --databases postgresql \\
        --output var/bench/rehearsal-big.md"
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.core.management import call_command
from django.db.models import Exists, OuterRef

from customers.models import StagedCustomer, StagingBatch
from migrations_jobs.models import ChunkAttempt, MigrationJob
from migrations_jobs.sandbox.models import SandboxCustomer, SandboxRequest
from migrations_jobs.sandbox.services import sandbox_reset
from tests.benchmarks import data, harness
from tests.benchmarks.bench_big import stage_file_command
from tests.benchmarks.bench_staging import database_key

STAGER = "bench-stager"
REVIEWER = "bench-reviewer"
WORKER_PROCESSES = 2
WEB_PROCESSES = 2
COMMAND_TIMEOUT_S = 1800.0
POLL_S = 0.1
SUBMITTED = re.compile(r"Submitted batch .*: job #(?P<job>\d+), (?P<customers>[\d,]+) customers")


@dataclass
class Ran:
    """A management command that ended well: its seconds, its process's peak memory (MB),
    and each line it printed with the wall-clock time it was read."""

    seconds: float
    peak_mb: float
    lines: list[tuple[float, str]] = field(default_factory=list)

    def output(self) -> str:
        return "\n".join(line for _at, line in self.lines)

    def first(self, pattern: re.Pattern[str]) -> tuple[float, re.Match[str]]:
        """The first line ``pattern`` matches, with the time it was read."""
        for at, line in self.lines:
            found = pattern.search(line)
            if found:
                return at, found
        raise RuntimeError(f"no line matches {pattern.pattern!r}:\n{self.output()[-3000:]}")


def manage_command(*args: str, env: dict[str, str] | None = None) -> Ran:
    """Run ``manage.py ARGS`` in a process of its own, reading its output as it comes (each
    line timed when read); its peak memory is the process's own, from ``os.wait4``."""
    command = [harness.PYTHON, "manage.py", *args]
    started_wall, started = time.time(), time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=harness.BASE_DIR,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    watchdog = threading.Timer(COMMAND_TIMEOUT_S, process.kill)
    watchdog.start()
    lines: list[tuple[float, str]] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((started_wall + time.perf_counter() - started, line.rstrip("\n")))
        _pid, status, usage = os.wait4(process.pid, 0)
    finally:
        watchdog.cancel()
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    ran = Ran(seconds=seconds, peak_mb=usage.ru_maxrss / 1024, lines=lines)
    if process.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} exited {process.returncode} after {seconds:.0f} s:\n"
            f"{ran.output()[-3000:]}"
        )
    return ran


def _operators() -> None:
    """The stager and the reviewer, with their roles' permissions and nothing more."""
    for username, role in ((STAGER, "stager"), (REVIEWER, "reviewer")):
        call_command("operator_create", username, role=role, stdout=io.StringIO())


def _stage(batch: str, customers: int, figures: dict) -> None:
    files = data.files(customers=customers, root=harness.DATA_DIR)
    figures.update({"rows": 0, "stage_s": 0.0, "stage_peak_mb": 0.0})
    for kind in data.KINDS:
        seconds, peak_mb, said = stage_file_command(batch, kind, files[kind], STAGER)
        rows = data.row_count(kind, customers)
        if f"Staged {rows:,} {kind}" not in said:
            raise RuntimeError(f"stage_file {kind}: {said}")
        figures[f"stage_{kind}_s"] = seconds
        figures[f"stage_{kind}_peak_mb"] = peak_mb
        figures["rows"] += rows
        figures["stage_s"] += seconds
        figures["stage_peak_mb"] = max(figures["stage_peak_mb"], peak_mb)
    figures["stage_rows_per_s"] = figures["rows"] / figures["stage_s"]


def cpu_s(process: harness.Process) -> float:
    """CPU seconds (user and system) that ``process`` and its live descendants have used."""
    ticks = 0
    for pid in [process.process.pid, *harness._descendants(process.process.pid)]:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _wait_for_job(job_id: int, worker: harness.Process, timeout_s: float) -> MigrationJob:
    deadline = time.monotonic() + timeout_s
    job = MigrationJob.objects.get(pk=job_id)
    while not job.is_terminal:
        if job.status == MigrationJob.Status.HELD:
            raise RuntimeError(f"job #{job.pk} is held: {worker.log()[-3000:]}")
        if time.monotonic() > deadline or not worker.is_running:
            raise RuntimeError(f"job #{job.pk} {job.status}: {worker.log()[-3000:]}")
        time.sleep(POLL_S)
        job.refresh_from_db()
    return job


def _first_arrival() -> dt.datetime:
    first = SandboxRequest.objects.order_by("received_at").values_list("received_at", flat=True)
    if not first:
        raise RuntimeError("the job ended, and no request reached the sandbox")
    return first[0]


def _check(job: MigrationJob, batch: StagingBatch, customers: int) -> int:
    """Fail unless the job succeeded and the sandbox holds every staged customer exactly
    once, no request refused; the requests it received."""
    if job.status != MigrationJob.Status.SUCCEEDED or not (
        job.total_customers == job.sent_customers == customers and not job.failed_customers
    ):
        raise RuntimeError(
            f"job #{job.pk} {job.status}: {job.sent_customers:,} sent, "
            f"{job.failed_customers:,} failed of {job.total_customers:,} ({customers:,} staged)"
        )
    held = SandboxCustomer.objects.count()
    twice = SandboxCustomer.objects.filter(times_received__gt=1).count()
    # NOT EXISTS, an anti-join: NOT IN over a million ids is a scan of them per row.
    held_by_sandbox = SandboxCustomer.objects.filter(legacy_id=OuterRef("legacy_id"))
    missing = StagedCustomer.objects.filter(batch=batch).exclude(Exists(held_by_sandbox)).count()
    refused = SandboxRequest.objects.filter(is_accepted=False).count()
    if held != customers or twice or missing or refused:
        raise RuntimeError(
            f"the sandbox holds {held:,} customers of {customers:,} ({twice:,} received more "
            f"than once, {missing:,} staged ones missing); {refused:,} requests refused"
        )
    return SandboxRequest.objects.count()


def rehearse(*, customers: int, name: str, job_timeout_s: float) -> dict:
    """The whole path for ``customers`` customers into a new batch ``name``; figures by
    phase (see the module's docstring)."""
    if database_key() != "postgresql":
        raise RuntimeError("the rehearsal runs on PostgreSQL only")
    database = harness.databases()["postgresql"]
    data.files(customers=customers, root=harness.DATA_DIR)  # made before anything is timed
    _operators()
    sandbox_reset()
    figures: dict = {"customers": customers}
    with harness.server_start(
        database, workers=WEB_PROCESSES, SANDBOX_RATE_INTERVAL_S=0, SANDBOX_HOURLY_CAP=0
    ) as server:
        # The submitting command records the settings the job runs with: the worker's.
        sending = {
            "MASIVO_BASE_URL": f"{server.url}/sandbox/api/storefront/v1",
            "MASIVO_AUTH_URL": f"{server.url}/sandbox/auth/authorize",
            "MIGRATION_MIN_INTERVAL_S": "0",
            "MIGRATION_HOURLY_CAP": "0",
            "MIGRATION_MAX_IN_FLIGHT": str(WORKER_PROCESSES),
        }
        with harness.worker_start(database, concurrency=WORKER_PROCESSES, **sending) as worker:
            started = time.time()
            _stage(name, customers, figures)

            validated = manage_command("batch_validate", name, "--user", STAGER)
            if f"Batch “{name}” is validated." not in validated.output():
                raise RuntimeError(validated.output()[-3000:])
            figures["validate_s"] = validated.seconds
            figures["validate_peak_mb"] = validated.peak_mb

            approved = manage_command("batch_approve", name, "--user", REVIEWER)
            if "is approved by" not in approved.output():
                raise RuntimeError(approved.output()[-3000:])
            figures["approve_s"] = approved.seconds
            figures["approve_peak_mb"] = approved.peak_mb

            cpu_before = cpu_s(worker), cpu_s(server)
            submit_started = time.time()
            submitted = manage_command("batch_submit", name, "--user", REVIEWER, env=sending)
            submitted_at, said = submitted.first(SUBMITTED)
            figures["submit_s"] = submitted_at - submit_started
            figures["submit_command_s"] = submitted.seconds
            figures["submit_peak_mb"] = submitted.peak_mb

            job = _wait_for_job(int(said["job"]), worker, job_timeout_s)
            figures["send_worker_cpu_s"] = cpu_s(worker) - cpu_before[0]
            figures["send_web_cpu_s"] = cpu_s(server) - cpu_before[1]
            figures["worker_peak_mb"] = worker.peak_rss_mb()
        figures["web_peak_mb"] = server.peak_rss_mb()

    first = _first_arrival().timestamp()
    finished = job.finished_at.timestamp()
    figures["chunks"] = job.chunk_count
    figures["first_request_s"] = first - submitted_at
    figures["send_s"] = finished - first
    figures["send_customers_per_s"] = customers / figures["send_s"]
    figures["total_s"] = finished - started
    figures["requests"] = _check(job, StagingBatch.objects.get(name=name), customers)
    figures["sandbox_request_s"] = statistics.median(
        SandboxRequest.objects.values_list("duration_s", flat=True)
    )
    figures["attempt_s"] = statistics.median(
        ChunkAttempt.objects.filter(chunk__job=job).values_list("duration_s", flat=True)
    )
    return figures


def rehearsal(*, run: int) -> dict:
    return rehearse(customers=100_000, name=f"rehearsal-{run}", job_timeout_s=900)


def rehearsal_big(*, run: int) -> dict:
    return rehearse(customers=1_000_000, name=f"rehearsal-big-{run}", job_timeout_s=3600)


CASES = {"rehearsal": rehearsal, "rehearsal_big": rehearsal_big}
