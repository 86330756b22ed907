"""Pacing: how close the console comes to Masivo's limit without a 429 of its own making.

Run only these cases (PostgreSQL at DATABASE_URL, one pass, about 4 minutes; the table
goes to var/bench/pacing.md instead of docs/BENCHMARKS.md):

    make bench BENCH_ARGS="--only pacing --databases postgresql --output var/bench/pacing.md"

(the same as ``.venv/bin/python -m tests.benchmarks --only pacing --databases postgresql
--output var/bench/pacing.md`` with ``DATABASE_URL`` set). ``BENCH_PACING_CASES`` (names
from ``PACING_CASES``, comma-separated, e.g. ``0.2s-c2,5s-c4-jitter``) runs some of them.

Each case is one interval, set alike for the console (``MIGRATION_MIN_INTERVAL_S``) and
for the sandbox's own limiter, which counts requests by their arrival at the server
(``rate_clock`` "arrival", stamped by the first middleware) and answers 429 to one that
arrives within the interval of another. Every answer takes longer than the interval (the
sandbox's slow answers: ``slow_s`` = 1.5 intervals, after the request was counted), so
several requests must be in flight at once to keep up: the job runs on a real Celery
worker of 2 to 4 processes, as many chunks in flight (``MIGRATION_MAX_IN_FLIGHT``). At
5 s a case also adds 50 ms of network jitter: each request arrives a uniform draw of up to
50 ms later than it was sent. The cases run one after another on one gunicorn server (6
processes, so a slow answer never holds a new request in the accept queue); before each,
the sandbox, the console's pacing state and the broker are emptied, and the job is a
fresh batch of its own (10 customers a request: a body's size does not matter here).

What a case measures, over a window that opens at the first request's arrival and lasts
``window_intervals`` intervals:

- sent: the requests that arrived in the window (429s included);
- allowed: what the interval allows from the first of them to the last, 1 + (last -
  first) / interval. A count of slots in a fixed window would step by a whole request
  (12 slots at 5 s: any pace up to 9% slow still fills all 12, so a 98% target could
  not fail); measured over the requests' own span, a pace 2% slow reads 98%;
- efficiency: sent / allowed; 429s: the sandbox's rate-limit answers during the whole
  case; min and mean gap between consecutive arrivals in the window.

The window includes the job's first requests, when the console does not yet know how
long answers take: a short window weighs them more than a long migration would.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from dataclasses import dataclass

from django.apps import apps
from django.test import override_settings
from django.utils import timezone

from customers.services import batch_approve, batch_validate
from migrations_jobs.sandbox.models import RateClock, SandboxRequest
from migrations_jobs.sandbox.services import sandbox_configure, sandbox_reset
from migrations_jobs.services import job_cancel, job_start
from tests.benchmarks import data, harness
from tests.benchmarks.bench_pipeline import _stage
from tests.benchmarks.bench_staging import database_key, new_batch, operator

CHUNK_SIZE = 10
# Answers take this many intervals (after the request was counted).
SLOW_INTERVALS = 1.5
SERVER_WORKERS = 6
# Time for the last requests of the window to be recorded before the job is cancelled.
SETTLE_S = 1.0
FIRST_REQUEST_TIMEOUT_S = 60.0
CASES_ENV = "BENCH_PACING_CASES"


@dataclass(frozen=True)
class PacingCase:
    interval_s: float
    concurrency: int
    window_intervals: int
    jitter_s: float = 0.0

    @property
    def name(self) -> str:
        jitter = "-jitter" if self.jitter_s else ""
        return f"{self.interval_s:g}s-c{self.concurrency}{jitter}"

    @property
    def window_s(self) -> float:
        return self.interval_s * self.window_intervals

    @property
    def slow_s(self) -> float:
        return round(SLOW_INTERVALS * self.interval_s, 6)

    @property
    def chunks(self) -> int:
        """Enough chunks that the job outlasts the window even at the full pace."""
        return math.ceil(self.window_intervals * 1.25) + 5


# At 5 s, 12 intervals (a minute) per case: with efficiency measured over the requests'
# own span (see above), 12 requests tell a 98% pace from a 96% one; more would cost a
# minute per case.
PACING_CASES = (
    PacingCase(interval_s=0.2, concurrency=2, window_intervals=60),
    PacingCase(interval_s=0.2, concurrency=3, window_intervals=60),
    PacingCase(interval_s=0.2, concurrency=4, window_intervals=60),
    PacingCase(interval_s=1.0, concurrency=3, window_intervals=60),
    PacingCase(interval_s=5.0, concurrency=4, window_intervals=12),
    PacingCase(interval_s=5.0, concurrency=4, window_intervals=12, jitter_s=0.05),
)


def _selected() -> tuple[PacingCase, ...]:
    wanted = [name.strip() for name in os.environ.get(CASES_ENV, "").split(",") if name.strip()]
    if not wanted:
        return PACING_CASES
    known = {case.name: case for case in PACING_CASES}
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise RuntimeError(f"{CASES_ENV}: unknown cases {unknown}; known: {sorted(known)}")
    return tuple(known[name] for name in wanted)


def _settings(case: PacingCase) -> dict:
    return {
        "MIGRATION_MIN_INTERVAL_S": case.interval_s,
        "MIGRATION_HOURLY_CAP": 0,
        "MIGRATION_MAX_IN_FLIGHT": case.concurrency,
    }


def _approved_batch(case: PacingCase, *, index: int, run: int):
    files = data.files(
        customers=CHUNK_SIZE * case.chunks, root=harness.DATA_DIR, prefix=f"P{index}"
    )
    batch = new_batch(f"pacing-{run}-{case.name}")
    _stage(batch, files)
    batch_validate(batch=batch, user=batch.created_by)
    with override_settings(MIGRATION_CHUNK_SIZE=CHUNK_SIZE):
        # The approval's fingerprint covers the request bodies, so their size too.
        return batch_approve(batch=batch, user=operator("bench-approver"))


def _pacing_forget() -> None:
    """Empty the console's pacing state (the next slot, the round trips it learned, the
    hour's slots: the ``Pacing*`` models), so that no case inherits another's."""
    for model in apps.get_app_config("migrations_jobs").get_models():
        if model.__name__.startswith("Pacing"):
            model.objects.all().delete()


def _first_arrival(worker: harness.Process) -> dt.datetime:
    deadline = time.monotonic() + FIRST_REQUEST_TIMEOUT_S
    while True:
        first = SandboxRequest.objects.order_by("received_at").values_list(
            "received_at", flat=True
        )[:1]
        if first:
            return first[0]
        if not worker.is_running or time.monotonic() > deadline:
            raise RuntimeError(f"no request reached the sandbox:\n{worker.log()[-3000:]}")
        time.sleep(0.02)


def _sleep_until(moment: dt.datetime, worker: harness.Process) -> None:
    while (left := (moment - timezone.now()).total_seconds()) > 0:
        if not worker.is_running:
            raise RuntimeError(worker.log()[-3000:])
        time.sleep(min(left, 0.5))


def case_figures(
    case: PacingCase, *, arrivals: list[dt.datetime], first: dt.datetime, rate_limited: int
) -> dict:
    """A case's figures from the arrivals the sandbox recorded (see the module's
    docstring)."""
    end = first + dt.timedelta(seconds=case.window_s)
    times = sorted(t for t in arrivals if first <= t < end)
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    span = (times[-1] - times[0]).total_seconds() if times else 0.0
    allowed = 1 + span / case.interval_s
    return {
        "name": case.name,
        "interval_s": case.interval_s,
        "concurrency": case.concurrency,
        "jitter_s": case.jitter_s,
        "slow_s": case.slow_s,
        "window_s": case.window_s,
        "requests": len(times),
        "allowed": allowed,
        "efficiency_percent": 100 * len(times) / allowed,
        "rate_limited": rate_limited,
        "min_gap_s": min(gaps) if gaps else None,
        "mean_gap_s": sum(gaps) / len(gaps) if gaps else None,
    }


def _case_run(case: PacingCase, batch, *, server: harness.Process) -> dict:
    database = harness.databases()[database_key()]
    harness.redis_flush()
    sandbox_reset()
    _pacing_forget()
    sandbox_configure(
        rate_interval_s=case.interval_s,
        hourly_cap=0,
        rate_clock=RateClock.ARRIVAL,
        slow_rate=1.0,
        slow_s=case.slow_s,
        jitter_s=case.jitter_s,
    )
    approver = operator("bench-approver")
    started = time.monotonic()
    with harness.worker_start(
        database, concurrency=case.concurrency, server_url=server.url, **_settings(case)
    ) as worker:
        with override_settings(MIGRATION_CHUNK_SIZE=CHUNK_SIZE, **_settings(case)):
            job = job_start(batch=batch, user=approver)
        first = _first_arrival(worker)
        _sleep_until(first + dt.timedelta(seconds=case.window_s + SETTLE_S), worker)
        job.refresh_from_db()
        ran_out = job.is_terminal
        if not ran_out:
            job_cancel(job=job, user=approver)
    job.refresh_from_db()
    arrivals = list(SandboxRequest.objects.values_list("received_at", flat=True))
    rate_limited = SandboxRequest.objects.filter(reason=SandboxRequest.Reason.RATE_LIMITED).count()
    figures = case_figures(case, arrivals=arrivals, first=first, rate_limited=rate_limited)
    figures.update(
        {
            "first_request_s": (first - job.started_at).total_seconds() if job.started_at else None,
            "job_ran_out": ran_out,
            "case_s": time.monotonic() - started,
        }
    )
    return figures


def pacing(*, run: int) -> dict:
    database = harness.databases()[database_key()]
    cases = _selected()
    batches = [_approved_batch(case, index=i, run=run) for i, case in enumerate(cases)]
    results = []
    with harness.server_start(database, workers=SERVER_WORKERS) as server:
        for case, batch in zip(cases, batches, strict=True):
            results.append(_case_run(case, batch, server=server))
    return {"cases": results}


CASES = {"pacing": pacing}
