"""The legacy records staged into a batch: customers and their balances, devices and metrics.

Every field of a Masivo customer (see CONTRACT.md) has a typed column here; children
(balances, devices, metrics) point at their customer inside the same batch.
"""

from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from customers.models.batches import StagingBatch


class Gender(models.TextChoices):
    MALE = "MALE", _("Male")
    FEMALE = "FEMALE", _("Female")
    OTHER = "OTHER", _("Other")


class CustomerStatus(models.TextChoices):
    ACTIVE = "ACTIVE", _("Active")
    INACTIVE = "INACTIVE", _("Inactive")


class Platform(models.TextChoices):
    IOS = "ios", "iOS"
    ANDROID = "android", "Android"
    WEB = "web", _("Web")


class Period(models.TextChoices):
    LIFETIME = "lifetime", _("Lifetime")
    LAST_YEAR = "last_year", _("Last year")
    THIS_YEAR = "this_year", _("This year")
    LAST_MONTH = "last_month", _("Last month")
    THIS_MONTH = "this_month", _("This month")
    LAST_QUARTER = "last_quarter", _("Last quarter")
    THIS_QUARTER = "this_quarter", _("This quarter")
    LAST_SEMESTER = "last_semester", _("Last semester")
    THIS_SEMESTER = "this_semester", _("This semester")


class Outcome(models.TextChoices):
    """A staged customer's outcome in Masivo::

        not_sent ──chunk accepted (201)──────────────────────────> sent
           │  ├────chunk failed───────────────────────────────────> failed
           │  └────another batch sent it, or is sending it───────> skipped
           ^
           ├──── retry failed chunks ─────────────────── failed
           └──── send again (an operator, with a reason) ── sent | skipped

    ``skipped`` is not a failure: the console sends a customer id to a Masivo account at
    most once (migrations_jobs.models.Delivery), and another batch holds it.
    ``OUTCOME_TRANSITIONS`` (below) is this diagram as a map; every change of an outcome
    goes through ``customers.services.customers_outcome_transition``.
    """

    NOT_SENT = "not_sent", _("Not sent")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")


OUTCOME_TRANSITIONS: dict[str, tuple[str, ...]] = {
    Outcome.NOT_SENT: (Outcome.SENT, Outcome.FAILED, Outcome.SKIPPED),
    Outcome.FAILED: (Outcome.NOT_SENT,),
    Outcome.SENT: (Outcome.NOT_SENT,),
    Outcome.SKIPPED: (Outcome.NOT_SENT,),
}


# Amounts keep the precision of the file: up to 6 decimals and 15 significant digits,
# what every supported database stores exactly (SQLite keeps 15 digits).
AMOUNT_DIGITS = 15
AMOUNT_DECIMALS = 6


class StagedCustomer(models.Model):
    # Indexed with the pk (customer_batch_pk_idx), which serves lookups by batch too.
    batch = models.ForeignKey(
        StagingBatch,
        verbose_name=_("batch"),
        on_delete=models.CASCADE,
        related_name="customers",
        db_index=False,
    )
    legacy_id = models.CharField(_("legacy id"), max_length=255)
    name = models.CharField(_("name"), max_length=255, blank=True)
    email = models.CharField(_("email"), max_length=254, blank=True)
    gender = models.CharField(_("gender"), max_length=16, choices=Gender.choices, blank=True)
    dob = models.DateTimeField(_("date of birth"), null=True, blank=True)
    registration_date = models.DateTimeField(_("registration date"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=CustomerStatus.choices, blank=True
    )
    document_type = models.CharField(_("document type"), max_length=64, blank=True)
    document_number = models.CharField(_("document number"), max_length=64, blank=True)
    country = models.CharField(_("country"), max_length=64, blank=True)
    metadata = models.JSONField(_("metadata"), null=True, blank=True)
    metrics_updated_at = models.DateTimeField(_("metrics updated at"), null=True, blank=True)
    is_excluded = models.BooleanField(_("excluded"), default=False)
    exclusion_reason = models.CharField(_("exclusion reason"), max_length=255, blank=True)
    # Set by validation: the customer breaks a contract rule (see CustomerProblem).
    is_valid = models.BooleanField(_("valid"), null=True, blank=True)
    # An operator chose to send this customer again although the console already sent its
    # id (by an earlier batch, or by this batch's job): see migrations_jobs' send again.
    # Consumed when a chunk takes the customer's delivery over.
    resend = models.BooleanField(_("send again"), default=False)

    # The customer's outcome in Masivo, written by migration jobs through
    # ``customers.services.customers_outcome_transition`` (its diagram: ``Outcome``; its map:
    # ``OUTCOME_TRANSITIONS``). Job and chunk are kept as plain ids: the jobs app depends
    # on this one, never the reverse.
    outcome = models.CharField(
        _("outcome"), max_length=16, choices=Outcome.choices, default=Outcome.NOT_SENT
    )
    outcome_at = models.DateTimeField(_("outcome at"), null=True, blank=True)
    outcome_error = models.TextField(_("outcome error"), blank=True)
    outcome_job_id = models.BigIntegerField(_("job"), null=True, blank=True)
    outcome_chunk_id = models.BigIntegerField(_("chunk"), null=True, blank=True)
    # Sent by a chunk that had been sent before with an unknown outcome (a timeout after
    # the body left, a 5xx, a worker lost mid-request): Masivo may hold it twice.
    outcome_maybe_twice = models.BooleanField(_("may have arrived twice"), default=False)
    # Skipped: the job that sent it (or is sending it, or may have sent it) instead.
    outcome_other_job_id = models.BigIntegerField(_("sent by job"), null=True, blank=True)
    # The row of its customers file (the header is row 1), for messages that send the
    # operator there; none for a customer staged from a nested body or by hand.
    source_row = models.PositiveIntegerField(_("row in its file"), null=True, blank=True)

    class Meta:
        verbose_name = _("staged customer")
        verbose_name_plural = _("staged customers")
        # By column, not by relation: ordering by "batch" would join the batch table to
        # sort by its own ordering, which costs a sort of every row of a large batch.
        ordering = ["-batch_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "legacy_id"], name="customer_unique_per_batch"
            ),
        ]
        indexes = [
            # A batch's customers in pk order: validation, chunking and the admin's list
            # read them a page at a time. Newest batch first, as the model is ordered.
            models.Index(fields=["-batch", "id"], name="customer_batch_pk_idx"),
            models.Index(Lower("email"), "batch", name="customer_batch_email_idx"),
            models.Index(fields=["legacy_id", "outcome"], name="customer_legacy_outcome_idx"),
            models.Index(fields=["batch", "is_valid"], name="customer_batch_valid_idx"),
            models.Index(fields=["batch", "outcome"], name="customer_batch_outcome_idx"),
            # A job's failed customers, in staging order: the job page lists the first few.
            models.Index(
                fields=["outcome_job_id", "outcome", "id"],
                name="customer_job_outcome_idx",
                condition=models.Q(outcome_job_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.legacy_id


class StagedBalance(models.Model):
    batch = models.ForeignKey(
        StagingBatch, verbose_name=_("batch"), on_delete=models.CASCADE, related_name="balances"
    )
    customer = models.ForeignKey(
        StagedCustomer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="balances",
    )
    reward_id = models.UUIDField(_("reward id"))
    amount = models.DecimalField(
        _("amount"), max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_DECIMALS
    )
    expiration_date = models.DateTimeField(_("expiration date"), null=True, blank=True)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    brand_id = models.CharField(_("brand id"), max_length=255, blank=True)
    channel_id = models.CharField(_("channel id"), max_length=255, blank=True)
    store_id = models.CharField(_("store id"), max_length=255, blank=True)
    funded_by = models.CharField(_("funded by"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("staged balance")
        verbose_name_plural = _("staged balances")
        ordering = ["customer_id", "id"]

    def __str__(self) -> str:
        return f"{self.reward_id}: {self.amount}"


class StagedDevice(models.Model):
    batch = models.ForeignKey(
        StagingBatch, verbose_name=_("batch"), on_delete=models.CASCADE, related_name="devices"
    )
    customer = models.ForeignKey(
        StagedCustomer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="devices"
    )
    device_token = models.CharField(_("device token"), max_length=512)
    platform = models.CharField(_("platform"), max_length=16, choices=Platform.choices, blank=True)
    model = models.CharField(_("model"), max_length=128, blank=True)
    os_version = models.CharField(_("OS version"), max_length=64, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), null=True, blank=True)

    class Meta:
        verbose_name = _("staged device")
        verbose_name_plural = _("staged devices")
        ordering = ["customer_id", "id"]

    def __str__(self) -> str:
        return self.device_token


class StagedMetric(models.Model):
    """One period of a customer's metrics (``metrics.<period>`` in the body)."""

    batch = models.ForeignKey(
        StagingBatch, verbose_name=_("batch"), on_delete=models.CASCADE, related_name="metrics"
    )
    customer = models.ForeignKey(
        StagedCustomer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="metrics"
    )
    period = models.CharField(_("period"), max_length=16, choices=Period.choices)
    period_from = models.DateTimeField(_("from"), null=True, blank=True)
    period_to = models.DateTimeField(_("to"), null=True, blank=True)
    tier_id = models.UUIDField(_("tier id"), null=True, blank=True)
    last_visit = models.DateTimeField(_("last visit"), null=True, blank=True)
    last_session = models.DateTimeField(_("last session"), null=True, blank=True)
    spend_total = models.DecimalField(
        _("spend total"),
        max_digits=AMOUNT_DIGITS,
        decimal_places=AMOUNT_DECIMALS,
        null=True,
        blank=True,
    )
    number_of_purchases = models.PositiveIntegerField(
        _("number of purchases"), null=True, blank=True
    )

    class Meta:
        verbose_name = _("staged metric")
        verbose_name_plural = _("staged metrics")
        ordering = ["customer_id", "period"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "period"], name="metric_unique_period"),
        ]

    def __str__(self) -> str:
        return self.period
