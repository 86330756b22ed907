"""Migration jobs: an approved batch sent to Masivo in chunks, with every attempt recorded.

Status changes happen only in ``migrations_jobs.services`` through conditional updates
guarded by the ``TRANSITIONS`` below; nothing here writes or sends anything.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from customers.models import StagingBatch

PACING_PK = 1


class MigrationJob(models.Model):
    class Status(models.TextChoices):
        """Where a job is in its life::

            queued ──run──> running ──every customer sent──────────> succeeded
              │               │  ├────some sent, some failed───────> partially_failed ─┐
              │               │  ├────none sent─────────────────────> failed ──────────┤
              │               │  └────cancel────────────────────────> cancelled        │
              └────cancel─────┼─────────────────────────────────────> cancelled        │
                              ^──────────────── retry failed ──────────────────────────┘

        ``queued`` and ``running`` jobs are active: workers claim their chunks. A running
        job ends when none of its chunks is pending or sending any more.
        """

        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        PARTIALLY_FAILED = "partially_failed", _("Partially failed")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    TERMINAL_STATUSES = (
        Status.SUCCEEDED,
        Status.PARTIALLY_FAILED,
        Status.FAILED,
        Status.CANCELLED,
    )
    TRANSITIONS: dict[str, tuple[str, ...]] = {
        Status.QUEUED: (Status.RUNNING, Status.CANCELLED),
        Status.RUNNING: (
            Status.SUCCEEDED,
            Status.PARTIALLY_FAILED,
            Status.FAILED,
            Status.CANCELLED,
        ),
        Status.PARTIALLY_FAILED: (Status.RUNNING,),
        Status.FAILED: (Status.RUNNING,),
        Status.SUCCEEDED: (),
        Status.CANCELLED: (),
    }

    batch = models.ForeignKey(
        StagingBatch, verbose_name=_("batch"), on_delete=models.PROTECT, related_name="jobs"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("started by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("cancelled by"),
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )

    total_customers = models.PositiveIntegerField(_("customers"), default=0)
    sent_customers = models.PositiveIntegerField(_("sent"), default=0)
    failed_customers = models.PositiveIntegerField(_("failed"), default=0)
    chunk_count = models.PositiveIntegerField(_("chunks"), default=0)
    retried_unknown_count = models.PositiveIntegerField(
        _("chunks retried after an unknown outcome"),
        default=0,
        help_text=_(
            "Each time a chunk was sent again although its previous request may have "
            "reached Masivo (timeout after sending, 5xx, a worker that died mid-request). "
            "Masivo may hold those customers twice."
        ),
    )
    request_count = models.PositiveIntegerField(_("requests"), default=0)

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    settings_used = models.JSONField(
        _("settings used"),
        default=dict,
        blank=True,
        help_text=_("Chunk size, pacing, retry and endpoint settings when the job started."),
    )

    # Bookkeeping of the job's Celery tasks (see services.job_wake_schedule and jobs_sweep):
    # the last time a worker claimed or swept for this job, and the one wake-up task that
    # is currently valid.
    heartbeat_at = models.DateTimeField(_("last worker activity"), null=True, blank=True)
    wake_at = models.DateTimeField(_("next wake-up"), null=True, blank=True)
    wake_token = models.CharField(_("wake-up token"), max_length=32, blank=True)
    # When the outcome of the job's latest ending was emailed (see notifications.py); an
    # ending after that (a retry that ran to its end) is announced again.
    notified_at = models.DateTimeField(_("outcome emailed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("migration job")
        verbose_name_plural = _("migration jobs")
        ordering = ["-created_at", "-pk"]
        permissions = [
            ("cancel_migrationjob", _("Can cancel a migration job")),
            ("retry_migrationjob", _("Can retry failed chunks and resume a migration job")),
        ]
        indexes = [
            models.Index(fields=["batch", "status"], name="job_batch_status_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL_STATUSES

    def can_move_to(self, status: str) -> bool:
        return status in self.TRANSITIONS[self.status]

    @property
    def progress_percent(self) -> int:
        """Customers with an outcome (sent or failed), as a whole percentage."""
        if not self.total_customers:
            return 0
        done = self.sent_customers + self.failed_customers
        return min(100, (100 * done) // self.total_customers)


class JobChunk(models.Model):
    class Status(models.TextChoices):
        """Where a chunk is in its life::

                        ┌──── retry (not_before = now + backoff) ───┐
                        v                                          │
            pending ──claim──> sending ──201──────────────────> sent
               │  ^              │  ├──refused, many customers─> split (two new chunks)
               │  └─lease lost───┘  ├──refused, one customer───> failed
               │                    ├──attempts exhausted──────> failed
               └──job cancelled──> cancelled <──job cancelled───┘

        A ``sending`` chunk belongs to the worker named in ``lease_owner`` until
        ``lease_expires_at``; after that any worker may take it back to ``pending``.
        A 201 is recorded even when it comes back late, after the lease was lost.
        """

        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SPLIT = "split", _("Split")
        CANCELLED = "cancelled", _("Cancelled")

    OPEN_STATUSES = (Status.PENDING, Status.SENDING)
    TRANSITIONS: dict[str, tuple[str, ...]] = {
        Status.PENDING: (Status.SENDING, Status.SENT, Status.CANCELLED),
        Status.SENDING: (
            Status.SENT,
            Status.PENDING,
            Status.FAILED,
            Status.SPLIT,
            Status.CANCELLED,
        ),
        Status.SENT: (),
        Status.FAILED: (),
        Status.SPLIT: (),
        Status.CANCELLED: (),
    }

    job = models.ForeignKey(
        MigrationJob, verbose_name=_("job"), on_delete=models.CASCADE, related_name="chunks"
    )
    sequence = models.PositiveIntegerField(_("number"))
    parent = models.ForeignKey(
        "self",
        verbose_name=_("from chunk"),
        on_delete=models.CASCADE,
        related_name="children",
        null=True,
        blank=True,
        help_text=_("The chunk this one was split from, or the failed chunk it retries."),
    )
    customer_ids = models.JSONField(_("staged customer ids"), default=list)
    customer_count = models.PositiveIntegerField(_("customers"), default=0)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    unknown_outcome_retries = models.PositiveIntegerField(
        _("retries after an unknown outcome"), default=0
    )
    not_before = models.DateTimeField(_("not before"))
    lease_owner = models.CharField(_("worker"), max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    # Set just before a request leaves, cleared when its answer is recorded: a chunk whose
    # lease expires while this is set may have reached Masivo.
    request_started_at = models.DateTimeField(_("request started at"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(
        _("last HTTP status"), null=True, blank=True
    )
    last_outcome = models.CharField(_("last outcome"), max_length=32, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("chunk")
        verbose_name_plural = _("chunks")
        ordering = ["job_id", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["job", "sequence"], name="chunk_unique_sequence"),
        ]
        indexes = [
            # The claim: a job's due pending chunks in order.
            models.Index(
                fields=["job", "status", "not_before", "sequence"], name="chunk_claim_idx"
            ),
            # The sweep: sending chunks whose lease expired, across jobs.
            models.Index(
                fields=["lease_expires_at"],
                name="chunk_sending_lease_idx",
                condition=Q(status="sending"),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} ({self.customer_count})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class ChunkAttempt(models.Model):
    """One request for a chunk, as it was answered. Never holds a secret: the response
    excerpt is redacted by the client."""

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", _("Accepted")
        RETRY_NOT_SENT = "retry_not_sent", _("Not processed: retried")
        RETRY_UNKNOWN = "retry_unknown", _("Outcome unknown")
        PERMANENT = "permanent", _("Refused")
        TOO_LARGE = "too_large", _("Too large")
        AUTH_ERROR = "auth_error", _("Token refused")
        LEASE_EXPIRED = "lease_expired", _("Worker lost")

    chunk = models.ForeignKey(
        JobChunk, verbose_name=_("chunk"), on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField(_("attempt"))
    worker = models.CharField(_("worker"), max_length=200, blank=True)
    customer_count = models.PositiveIntegerField(_("customers"), default=0)
    started_at = models.DateTimeField(_("started at"))
    duration_s = models.FloatField(_("duration (s)"), null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=32, choices=Outcome.choices)
    error_class = models.CharField(_("error"), max_length=100, blank=True)
    response_excerpt = models.TextField(_("response excerpt"), blank=True)
    ratelimit = models.JSONField(_("rate-limit headers"), default=dict, blank=True)
    retry_after_s = models.FloatField(_("Retry-After (s)"), null=True, blank=True)
    token_refreshed = models.BooleanField(_("token refreshed"), default=False)

    class Meta:
        verbose_name = _("attempt")
        verbose_name_plural = _("attempts")
        ordering = ["chunk_id", "number", "id"]

    def __str__(self) -> str:
        return f"{self.chunk_id}/{self.number}: {self.status_code or self.outcome}"


class PacingState(models.Model):
    """The one row (pk 1) that every worker locks to book a request slot: when the next
    request may leave, shared by every process and host through the database."""

    next_slot_at = models.DateTimeField(_("next request not before"), null=True, blank=True)
    # When the latest request known to have left did: how long Masivo has been idle.
    last_left_at = models.DateTimeField(_("last request left at"), null=True, blank=True)
    # The latest requests' round trips (leaving to answer, in seconds), oldest first.
    round_trips = models.JSONField(_("recent round trips (s)"), default=list, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("pacing state")
        verbose_name_plural = _("pacing state")
        constraints = [
            models.CheckConstraint(condition=Q(pk=PACING_PK), name="pacing_state_singleton"),
        ]

    def __str__(self) -> str:
        return f"next slot {self.next_slot_at}"


class PacingSlot(models.Model):
    """A request slot booked in the last hour, for the hourly cap (pruned as it ages)."""

    booked_at = models.DateTimeField(_("booked at"), db_index=True)

    class Meta:
        verbose_name = _("pacing slot")
        verbose_name_plural = _("pacing slots")
        ordering = ["booked_at"]

    def __str__(self) -> str:
        return f"{self.booked_at}"
