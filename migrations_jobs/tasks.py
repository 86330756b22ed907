"""Celery tasks: thin interfaces over ``migrations_jobs.services``, taking ids only.

Every task is idempotent (chunks are claimed under locks and leased), so ``acks_late``
redeliveries and duplicated messages never send a chunk twice.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import uuid

from celery import shared_task
from celery.signals import worker_ready, worker_shutting_down
from django.conf import settings
from django.db import InterfaceError, OperationalError

from migrations_jobs import services

logger = logging.getLogger("migrations_jobs")

# A run that cannot reach the database is retried through the broker after this long,
# doubled at each retry up to the cap, for as long as the database stays away.
DATABASE_RETRY_FIRST_S = 1.0
DATABASE_RETRY_MAX_S = 30.0
# What a lost or refused database connection raises (not a bug: worth trying again).
DATABASE_UNREACHABLE = (OperationalError, InterfaceError)


def _worker_name() -> str:
    """Names one task execution in leases and attempts: host, process, execution."""
    return services.lease_owner_name(run=uuid.uuid4().hex[:8])


# Set in the worker's main process when it begins a warm shutdown (Ctrl-C, SIGTERM), and
# seen by its pool processes (created before they were forked): a run stops claiming,
# gives back a chunk still waiting for its slot, and finishes a request in flight.
_stopping = multiprocessing.Event()


@worker_shutting_down.connect
def _stop_runs(**_kwargs) -> None:
    _stopping.set()


@shared_task(bind=True, acks_late=True, ignore_result=True)
def job_run(self, job_id: int, wake: str = "") -> None:
    """Send the job's due chunks for a while, then hand over to the next run."""
    try:
        if wake and not services.job_wake_take(job_id=job_id, token=wake):
            return  # a later wake-up superseded this one
        wake = ""  # taken: a retry of this run is no longer a wake-up
        services.jobs_sweep()
        next_in = services.job_process(
            job_id=job_id, worker=_worker_name(), should_stop=_stopping.is_set
        )
        if next_in is None:
            return
        if next_in <= 0:
            job_run.delay(job_id)
        else:
            services.job_wake_schedule(job_id=job_id, delay_s=next_in)
    except DATABASE_UNREACHABLE as error:
        # Without the database nothing can be recorded, not even a wake-up: the broker
        # keeps the job's next run instead. Chunks this run held come back when their
        # lease expires, as after any lost worker.
        countdown = min(DATABASE_RETRY_MAX_S, DATABASE_RETRY_FIRST_S * 2**self.request.retries)
        logger.warning(
            "Job #%s: the database is unreachable (%s); trying again in %.0f s",
            job_id,
            type(error).__name__,
            countdown,
        )
        raise self.retry(
            kwargs={"wake": wake} if wake else {},
            exc=error,
            countdown=countdown,
            max_retries=None,
        ) from error
    except Exception:
        # Come back once the lease of whatever this run held has expired.
        logger.exception("Job #%s: run failed; trying again in one lease", job_id)
        with contextlib.suppress(Exception):
            services.job_wake_schedule(job_id=job_id, delay_s=settings.MIGRATION_LEASE_S)
        raise


@shared_task(acks_late=True, ignore_result=True)
def jobs_sweep(takeover: bool = False) -> None:
    """Take back lost chunks and restart stalled jobs (periodic; also on worker start)."""
    services.jobs_sweep(takeover=takeover)


@worker_ready.connect
def _sweep_on_worker_start(**_kwargs) -> None:
    # A worker that starts may replace one that died holding a job's only task.
    jobs_sweep.delay(takeover=True)
