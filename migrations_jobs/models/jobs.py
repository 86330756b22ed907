"""A migration job, and the operators' decisions to send customers again."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from customers.models import StagingBatch


class MigrationJob(models.Model):
    class Status(models.TextChoices):
        """Where a job is in its life::

            queued ──run──> running ──every customer sent or skipped─> succeeded ───────┐
              │               │  ├────some sent, some failed─────────> partially_failed ┤
              │               │  ├────none sent, some failed─────────> failed ──────────┤
              │               │  ├────outcome unknown, held──────────> held ──┐         │
              │               │  └────cancel─────────────────────────> cancelled        │
              └────cancel─────┼──────────────────────────────────────> cancelled        │
                              ^───── retry failed, send again, resend held ─────────────┘

        ``queued`` and ``running`` jobs are active: workers claim their chunks. A running
        job ends when none of its chunks is pending or sending any more; it is ``held``
        instead while chunks whose outcome is unknown wait for an operator's decision
        (``MIGRATION_UNKNOWN_OUTCOME = hold``): marking them arrived ends it, sending them
        again runs it again, cancelling cancels it.
        """

        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        HELD = "held", _("Waiting for a decision")
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
    # Jobs that an operator can get going again (retry failed chunks, send again).
    RESTARTABLE_STATUSES = (
        Status.RUNNING,
        Status.HELD,
        Status.SUCCEEDED,
        Status.PARTIALLY_FAILED,
        Status.FAILED,
    )
    TRANSITIONS: dict[str, tuple[str, ...]] = {
        Status.QUEUED: (Status.RUNNING, Status.CANCELLED),
        Status.RUNNING: (
            Status.HELD,
            Status.SUCCEEDED,
            Status.PARTIALLY_FAILED,
            Status.FAILED,
            Status.CANCELLED,
        ),
        Status.HELD: (
            Status.RUNNING,
            Status.SUCCEEDED,
            Status.PARTIALLY_FAILED,
            Status.FAILED,
            Status.CANCELLED,
        ),
        Status.SUCCEEDED: (Status.RUNNING,),
        Status.PARTIALLY_FAILED: (Status.RUNNING,),
        Status.FAILED: (Status.RUNNING,),
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
    skipped_customers = models.PositiveIntegerField(
        _("skipped"),
        default=0,
        help_text=_(
            "Customers another batch sent, is sending or may have sent: the console sends "
            "a customer id to a Masivo account once. Not a failure."
        ),
    )
    # The customers' history (see ``JobChunk``, its phases): rows planned, sent, failed,
    # and left out (their customer is not in Masivo, or their transactions went before).
    total_transactions = models.PositiveIntegerField(_("transactions"), default=0)
    sent_transactions = models.PositiveIntegerField(_("transactions sent"), default=0)
    failed_transactions = models.PositiveIntegerField(_("transactions failed"), default=0)
    skipped_transactions = models.PositiveIntegerField(_("transactions left out"), default=0)
    total_events = models.PositiveIntegerField(_("events"), default=0)
    sent_events = models.PositiveIntegerField(_("events sent"), default=0)
    failed_events = models.PositiveIntegerField(_("events failed"), default=0)
    skipped_events = models.PositiveIntegerField(_("events left out"), default=0)
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

    def carried(self, what: str) -> int:
        """Customers and history rows together: ``what`` is total, sent, failed or
        skipped (left out)."""
        return sum(
            getattr(self, f"{what}_{kind}") for kind in ("customers", "transactions", "events")
        )

    @property
    def progress_percent(self) -> int:
        """Customers and history rows with an outcome (sent, failed or left out), as a
        whole percentage of all the job carries."""
        total = self.carried("total")
        if not total:
            return 0
        done = self.carried("sent") + self.carried("failed") + self.carried("skipped")
        return min(100, (100 * done) // total)

    @property
    def has_history(self) -> bool:
        return bool(self.total_transactions or self.total_events)

    @property
    def history_failed(self) -> int:
        return self.failed_transactions + self.failed_events


class SendAgain(models.Model):
    """An operator's decision to send customers again although the console already sent
    their ids (or skipped them because another batch had): who, when, why and whom.

    Recorded by ``migrations_jobs.services.customers_send_again``; never changed after.
    """

    batch = models.ForeignKey(
        StagingBatch, verbose_name=_("batch"), on_delete=models.PROTECT, related_name="+"
    )
    job = models.ForeignKey(
        MigrationJob,
        verbose_name=_("job"),
        on_delete=models.PROTECT,
        related_name="send_agains",
        null=True,
        blank=True,
        help_text=_("The job that sends them again; none while the batch is not submitted."),
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    reason = models.TextField(_("reason"))
    customer_count = models.PositiveIntegerField(_("customers"), default=0)
    customer_ids = models.JSONField(_("staged customer ids"), default=list)

    class Meta:
        verbose_name = _("send-again request")
        verbose_name_plural = _("send-again requests")
        ordering = ["-requested_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.batch_id}: {self.customer_count}"
