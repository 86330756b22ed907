"""Migration jobs: an approved batch sent to Masivo in chunks, with every attempt recorded,
and the console's deliveries: which customer id it holds for which Masivo account.

Status changes happen only in ``migrations_jobs.services`` through conditional updates
guarded by each model's ``TRANSITIONS``; nothing here writes or sends anything.
"""

from migrations_jobs.models.chunks import PHASES, ChunkAttempt, Endpoint, JobChunk
from migrations_jobs.models.deliveries import Delivery, TransactionDelivery
from migrations_jobs.models.jobs import MigrationJob, SendAgain
from migrations_jobs.models.pacing import PACING_PK, PacingSlot, PacingState

__all__ = [
    "PACING_PK",
    "PHASES",
    "ChunkAttempt",
    "Delivery",
    "Endpoint",
    "JobChunk",
    "MigrationJob",
    "PacingSlot",
    "PacingState",
    "SendAgain",
    "TransactionDelivery",
]
