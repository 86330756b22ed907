"""Leases: how long a worker holds a chunk, and the fence that keeps a worker that lost it
from sending.

A claim leases a chunk to a worker for ``MIGRATION_LEASE_S`` under a new
``lease_version`` (a fencing token). While the worker works on the chunk, a thread renews
the lease every quarter of that (``LeaseKeeper``), so a long request keeps its chunk and a
dead worker's chunk is free again within one lease. Immediately before the body leaves,
``Fence`` checks, in one conditional UPDATE, that the worker still holds the chunk under
its version and that the lease has not run out, and marks the request as having left: a
worker that stalled (stopped, swapped out, cut off from the database) past its lease never
sends, and a chunk whose lease ran out before that mark provably never reached Masivo.

A lease owner is named ``host:pid:run``; a chunk held by a process of this host that no
longer exists is free at once (``lease_owner_is_dead``), without waiting for its lease.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from migrations_jobs.models import JobChunk, MigrationJob
from migrations_jobs.pacing import pacing_depart

logger = logging.getLogger("migrations_jobs")

ChunkStatus = JobChunk.Status
# The keeper renews the lease this many times per lease.
RENEWALS_PER_LEASE = 4
# How long leaving a ``with LeaseKeeper`` waits for its thread.
KEEPER_JOIN_S = 2.0
# The fence sleeps at most this long before it looks at the pace again.
FENCE_WAIT_MAX_S = 0.5


def lease_s() -> float:
    return float(settings.MIGRATION_LEASE_S)


def lease_until(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(seconds=lease_s())


@dataclass(frozen=True)
class Lease:
    """A worker's hold on a chunk: the worker's name and the version it claimed."""

    chunk_id: int
    worker: str
    version: int

    def chunks(self):
        """The chunk, if this lease still holds it."""
        return JobChunk.objects.filter(
            pk=self.chunk_id,
            status=ChunkStatus.SENDING,
            lease_owner=self.worker,
            lease_version=self.version,
        )


def lease_renew(*, lease: Lease, now: dt.datetime | None = None) -> bool:
    """Push the lease's expiry one lease ahead; False when the worker no longer holds it."""
    now = now or timezone.now()
    return bool(lease.chunks().update(lease_expires_at=lease_until(now)))


class Fence:
    """Asked immediately before each POST of a chunk leaves (``MasivoClient``'s
    ``may_send``). It waits, if need be, until the pace lets a request leave and books the
    moment it leaves (``pacing.pacing_depart``), then checks the lease: the first call
    counts the attempt and marks the request as having left; a later call (the same body
    once more after a 401) only checks the lease again. Once committed, it lets the request
    go at the booked moment. False when the lease is lost: nothing leaves."""

    def __init__(self, *, lease: Lease, job_id: int) -> None:
        self.lease = lease
        self.job_id = job_id
        self.left_at: dt.datetime | None = None
        self._held = False

    def __call__(self) -> bool:
        while True:
            leave_at, wait = self._pass()
            if leave_at is not None:
                break
            time.sleep(min(wait, FENCE_WAIT_MAX_S))
        if not self._held:
            return False
        # Committed: the request leaves at the moment its departure was booked for.
        early_s = (leave_at - timezone.now()).total_seconds()
        if early_s > 0:
            time.sleep(early_s)
        return True

    def _pass(self) -> tuple[dt.datetime | None, float]:
        """One try: the moment the request leaves once decided (``_held`` says whether it
        may), else None and the seconds to wait for the pace (nothing was written)."""
        with transaction.atomic():
            # Lock order: the pacing row, the job's row, then the chunk's.
            now, wait = pacing_depart()
            if now is None:
                return None, wait
            held = self.lease.chunks().filter(lease_expires_at__gt=timezone.now())
            if self.left_at is not None:
                self._held = bool(held.update(lease_expires_at=lease_until(now)))
            else:
                MigrationJob.objects.filter(pk=self.job_id).update(
                    request_count=F("request_count") + 1, heartbeat_at=now
                )
                self._held = bool(
                    held.filter(request_left_at__isnull=True).update(
                        request_left_at=now,
                        attempts=F("attempts") + 1,
                        lease_expires_at=lease_until(now),
                    )
                )
                if self._held:
                    self.left_at = now
            if not self._held:
                transaction.set_rollback(True)
                logger.warning(
                    "Chunk %s: not sent, the lease of %s was lost before the body left",
                    self.lease.chunk_id,
                    self.lease.worker,
                )
        return now, 0.0


class LeaseKeeper:
    """``with LeaseKeeper(lease):`` renews the lease from a thread until the block ends.

    The thread uses its own database connection and closes it when it stops. A renewal
    that finds the lease gone stops renewing (``is_lost``); the fence is what keeps the
    worker from sending then.
    """

    def __init__(self, lease: Lease, *, every_s: float | None = None) -> None:
        self.lease = lease
        self.every_s = every_s if every_s is not None else lease_s() / RENEWALS_PER_LEASE
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"lease-{lease.chunk_id}", daemon=True
        )

    @property
    def is_lost(self) -> bool:
        return self._lost.is_set()

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=KEEPER_JOIN_S)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every_s):
                try:
                    renewed = lease_renew(lease=self.lease)
                except Exception:  # a database hiccup: the next renewal may succeed
                    logger.exception("Chunk %s: renewing the lease failed", self.lease.chunk_id)
                    continue
                if not renewed:
                    self._lost.set()
                    return
        finally:
            connection.close()


# --- owners -------------------------------------------------------------------------------


def worker_host() -> str:
    """This machine's name in lease owners: ``MIGRATION_WORKER_HOST``, else the host name."""
    return settings.MIGRATION_WORKER_HOST or socket.gethostname()


def lease_owner_name(*, run: str) -> str:
    """The name a worker's run holds leases under: host, process, run."""
    return f"{worker_host()}:{os.getpid()}:{run}"


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # A killed process its parent has not reaped yet is a zombie: gone all the same.
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")
    return False


def lease_owner_is_dead(owner: str) -> bool:
    """True when ``owner`` names a process of this host that no longer exists; False when
    it may be alive, or runs elsewhere (its lease then has to run out)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    host, pid = parts[0], int(parts[1])
    if host != worker_host() or pid == os.getpid():
        return False
    return _process_is_gone(pid)
