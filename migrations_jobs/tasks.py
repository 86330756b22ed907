"""Celery tasks: thin interfaces over ``migrations_jobs.services``, taking ids only.

Every task is idempotent (chunks are claimed under locks and leased), so ``acks_late``
redeliveries and duplicated messages never send a chunk twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from migrations_jobs import services

logger = logging.getLogger("migrations_jobs")


def _worker_name() -> str:
    """Names one task execution in leases and attempts: host, process, execution."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@shared_task(acks_late=True, ignore_result=True)
def job_run(job_id: int, wake: str = "") -> None:
    """Send the job's due chunks for a while, then hand over to the next run."""
    if wake and not services.job_wake_take(job_id=job_id, token=wake):
        return  # a later wake-up superseded this one
    services.jobs_sweep()
    try:
        next_in = services.job_process(job_id=job_id, worker=_worker_name())
    except Exception:
        # Come back once the lease of whatever this run held has expired.
        logger.exception("Job #%s: run failed; trying again in one lease", job_id)
        with contextlib.suppress(Exception):
            services.job_wake_schedule(job_id=job_id, delay_s=settings.MIGRATION_LEASE_S)
        raise
    if next_in is None:
        return
    if next_in <= 0:
        job_run.delay(job_id)
    else:
        services.job_wake_schedule(job_id=job_id, delay_s=next_in)


@shared_task(acks_late=True, ignore_result=True)
def jobs_sweep(takeover: bool = False) -> None:
    """Take back lost chunks and restart stalled jobs (periodic; also on worker start)."""
    services.jobs_sweep(takeover=takeover)


@worker_ready.connect
def _sweep_on_worker_start(**_kwargs) -> None:
    # A worker that starts may replace one that died holding a job's only task.
    jobs_sweep.delay(takeover=True)
