"""Sending an approved batch to Masivo: start, claim, send, record, cancel, retry, resume.

How a job moves (see DESIGN.md, "Delivery promise" and "Scale"):

- ``job_start`` freezes the batch's customers into chunks (one transaction) and enqueues
  ``job_run`` tasks after commit.
- A worker running ``job_run`` loops over ``chunk_claim`` and ``chunk_send`` for up to
  ``RUN_BUDGET_S``. A claim takes the job's row lock (so the per-job limit of chunks in
  flight holds exactly) and the chunk's row with ``SKIP LOCKED`` on PostgreSQL, guarded by
  a conditional UPDATE everywhere, and leases the chunk to the worker for
  ``MIGRATION_LEASE_S``.
- ``chunk_send`` builds the body outside any transaction, books a pacing slot and marks
  the request as started in one short transaction, sends with ``MasivoClient`` outside any
  transaction, then records the attempt and its consequences in one short transaction.
  Customers are marked sent only by the transaction that records their chunk's 201.
- Retryable answers put the chunk back to ``pending`` with a backoff; refusals split a
  chunk until the refused customers are alone; a chunk whose worker died (lease expired)
  goes back to ``pending`` on the next claim or sweep, counted as a retry after an unknown
  outcome when its request had left.
- Every status change goes through ``job_transition`` or ``chunks_transition``:
  conditional UPDATEs checked against the models' ``TRANSITIONS``.

Lock order, everywhere: pacing row, then job row, then chunk rows.

Modules: ``base`` (permissions, tunables, messages, the guards), ``deliveries`` (a
customer id sent once per account), ``leases`` (lease, heartbeat, fence), ``sending``
(claim and send), ``outcomes`` (what an answer means), ``jobs`` (start, run, sweep),
``actions`` (what operators do to a job). Callers import the services from here; the
messages they assert live in ``base``.
"""

from migrations_jobs.services.actions import (
    customers_send_again,
    job_cancel,
    job_held_mark_arrived,
    job_held_resend,
    job_needs_resume,
    job_resume,
    job_retry_failed,
)
from migrations_jobs.services.base import (
    CANCEL_PERMISSION,
    RETRY_PERMISSION,
    SEND_AGAIN_PERMISSION,
    SUBMIT_PERMISSION,
    JobStateError,
    chunks_transition,
    job_transition,
)
from migrations_jobs.services.deliveries import masivo_account
from migrations_jobs.services.jobs import (
    job_finish_if_done,
    job_process,
    job_start,
    job_wake_schedule,
    job_wake_take,
    jobs_sweep,
)
from migrations_jobs.services.leases import lease_owner_name
from migrations_jobs.services.sending import chunk_claim, chunk_send

__all__ = [
    "CANCEL_PERMISSION",
    "RETRY_PERMISSION",
    "SEND_AGAIN_PERMISSION",
    "SUBMIT_PERMISSION",
    "JobStateError",
    "chunk_claim",
    "chunk_send",
    "chunks_transition",
    "customers_send_again",
    "job_cancel",
    "job_finish_if_done",
    "job_held_mark_arrived",
    "job_held_resend",
    "job_needs_resume",
    "job_process",
    "job_resume",
    "job_retry_failed",
    "job_start",
    "job_transition",
    "job_wake_schedule",
    "job_wake_take",
    "jobs_sweep",
    "lease_owner_name",
    "masivo_account",
]
