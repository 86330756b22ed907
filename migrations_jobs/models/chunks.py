"""A job's chunks (one request's worth of customers, or of their history, each) and every
request made for them."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from migrations_jobs.models.jobs import MigrationJob


class Endpoint(models.TextChoices):
    """What a chunk carries, and so where it goes (CONTRACT.md), in the order a job sends
    them: customers, then their transactions, then their events."""

    CUSTOMERS = "customers", _("Customers")
    TRANSACTIONS = "transactions", _("Transactions")
    EVENTS = "events", _("Events")


# A job's phases, in order: every chunk of a phase waits until no chunk of an earlier one
# is pending, being sent or held.
PHASES = {Endpoint.CUSTOMERS: 0, Endpoint.TRANSACTIONS: 1, Endpoint.EVENTS: 2}


class JobChunk(models.Model):
    class Status(models.TextChoices):
        """Where a chunk is in its life::

            waiting ──earlier phases done (not_before = their end + wait)──┐
               └──job cancelled──> cancelled                         │
                        ┌──── retry (not_before = now + backoff) ───┐│
                        v                                          │v
            pending ──claim──> sending ──201──────────────────> sent
               │  ^              │  ├──refused, many customers─> split (two new chunks)
               │  │              │  ├──refused, one customer───> failed
               │  │              │  ├──attempts exhausted──────> failed
               │  │              │  └──outcome unknown, hold───> held ──marked arrived─> sent
               │  ├─lease lost───┘                                │
               │  └──────────────── send it again ────────────────┘
               ├──every customer held by another batch──> skipped
               └──job cancelled──> cancelled <──job cancelled── sending, held

        A claim first books the chunk's deliveries (``Delivery``): customers whose id
        another batch holds are skipped, and the chunk keeps only the others. A chunk of
        history keeps only the rows of customers Masivo has (their delivery is sent), and
        a chunk of transactions books each customer's ``TransactionDelivery`` too.

        A job's chunks of history are created ``waiting`` with the job: they become
        pending, due ``MASIVO_HISTORY_DELAY_S`` after the earlier phase's last accepted
        request, once no chunk of an earlier phase is open or held. A chunk of
        transactions whose outcome is unknown is always held: Masivo takes a customer's
        transactions once.

        A ``sending`` chunk belongs to the worker named in ``lease_owner``, under
        ``lease_version`` (a fencing token), until ``lease_expires_at``; the worker renews
        the lease while it works on the chunk. After that any worker may take it back to
        ``pending``: quietly if its request never left (``request_left_at`` unset), as a
        retry after an unknown outcome otherwise. A 201 is recorded even when it comes back
        late, after the lease was lost.
        """

        WAITING = "waiting", _("Waiting for the previous phase")
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SPLIT = "split", _("Split")
        SKIPPED = "skipped", _("Skipped")
        HELD = "held", _("Waiting for a decision")
        CANCELLED = "cancelled", _("Cancelled")

    OPEN_STATUSES = (Status.PENDING, Status.SENDING)
    TRANSITIONS: dict[str, tuple[str, ...]] = {
        Status.WAITING: (Status.PENDING, Status.CANCELLED),
        Status.PENDING: (Status.SENDING, Status.SENT, Status.SKIPPED, Status.CANCELLED),
        Status.SENDING: (
            Status.SENT,
            Status.PENDING,
            Status.FAILED,
            Status.SPLIT,
            Status.HELD,
            Status.CANCELLED,
        ),
        Status.HELD: (Status.PENDING, Status.SENT, Status.CANCELLED),
        Status.SENT: (),
        Status.FAILED: (),
        Status.SPLIT: (),
        Status.SKIPPED: (),
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
    endpoint = models.CharField(
        _("sends"), max_length=16, choices=Endpoint.choices, default=Endpoint.CUSTOMERS
    )
    # ``PHASES[endpoint]``, kept as a column for the claim's order.
    phase = models.PositiveSmallIntegerField(_("phase"), default=0)
    # A chunk of customers: the staged customers it sends. A chunk of history: none.
    customer_ids = models.JSONField(_("staged customer ids"), default=list)
    # The customers the request carries (for history: the distinct customers of its rows).
    customer_count = models.PositiveIntegerField(_("customers"), default=0)
    # A chunk of history: the staged transactions or events it sends, and how many.
    item_ids = models.JSONField(_("staged history rows"), default=list, blank=True)
    item_count = models.PositiveIntegerField(_("transactions or events"), default=0)
    skipped_count = models.PositiveIntegerField(_("skipped"), default=0)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    unknown_outcome_retries = models.PositiveIntegerField(
        _("retries after an unknown outcome"), default=0
    )
    # A request of this chunk (or of the chunk it was split from) may have reached Masivo
    # without being acknowledged: its customers, once sent, may be there twice.
    may_have_arrived = models.BooleanField(_("may have arrived before"), default=False)
    not_before = models.DateTimeField(_("not before"))
    # When the claim booked the chunk's deliveries (once per chunk).
    booked_at = models.DateTimeField(_("deliveries booked at"), null=True, blank=True)
    lease_owner = models.CharField(_("worker"), max_length=200, blank=True)
    # Raised by every claim: a worker acts on the chunk only under the version it claimed.
    lease_version = models.PositiveIntegerField(_("lease version"), default=0)
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    # Set when a pacing slot is booked for the chunk's request, cleared when its answer is
    # recorded: one request per lease.
    request_started_at = models.DateTimeField(_("request booked at"), null=True, blank=True)
    # Set by the fence, immediately before the body leaves: a chunk whose lease expires
    # while this is set may have reached Masivo; one whose lease expires before it never did.
    request_left_at = models.DateTimeField(_("request left at"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(
        _("last HTTP status"), null=True, blank=True
    )
    last_outcome = models.CharField(_("last outcome"), max_length=32, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    # Set when the chunk fails on an answer that is final for its body (the "fail" action
    # of ``services.outcomes.ACTIONS``: refused for its content, its access or its
    # address): sending it again cannot succeed, so "retry failed chunks" leaves it. A
    # chunk that failed after its attempts ran out on passing failures keeps it False.
    is_permanent = models.BooleanField(
        _("refused for good"),
        default=False,
        help_text=_(
            "Masivo refused this chunk in a way that sending it again cannot change; "
            "retrying failed chunks leaves it failed."
        ),
    )
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
            models.Index(fields=["job", "phase", "status"], name="chunk_phase_idx"),
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
    def is_history(self) -> bool:
        return self.endpoint != Endpoint.CUSTOMERS

    def tally(self, what: str) -> tuple[str, int]:
        """The job's counter of ``what`` (sent, failed, skipped) that this chunk moves,
        and by how much: customers for a chunk of customers, rows for one of history."""
        if self.is_history:
            return f"{what}_{self.endpoint}", self.item_count
        return f"{what}_customers", self.customer_count


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

    # Outcomes after which the request may have reached Masivo unacknowledged.
    UNKNOWN_OUTCOMES = (Outcome.RETRY_UNKNOWN, Outcome.LEASE_EXPIRED)

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
