"""What the sandbox keeps: its fault settings, its rate-limit window, the answers scripted
by tests, and a record of every token and migrate request with the customers they carried,
and the history (transactions, events) each customer's entries brought."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

SINGLETON_PK = 1
ERR_REJECT_IDS = _("A list of legacy ids, each a string.")
RATE_VALIDATORS = [MinValueValidator(0.0), MaxValueValidator(1.0)]


class RateClock(models.TextChoices):
    """Which moment of a migrate request the rate limiter counts.

    ``arrival``: when the request reached the server (stamped by ``SandboxArrivalMiddleware``
    before any other code runs), as a gateway in front of Masivo would count it; two
    requests are compared by their arrivals whatever order they are decided in.
    ``processing``: when the sandbox's view began to handle it, compared with the last
    request counted (the sandbox's behaviour before the arrival clock).
    """

    ARRIVAL = "arrival", _("When the request arrived")
    PROCESSING = "processing", _("When the sandbox processed it")


def default_token_lifetime_s() -> int:
    return getattr(settings, "SANDBOX_TOKEN_LIFETIME_S", 3600)


def default_rate_interval_s() -> float:
    return getattr(settings, "SANDBOX_RATE_INTERVAL_S", 0.0)


def default_hourly_cap() -> int:
    return getattr(settings, "SANDBOX_HOURLY_CAP", 0)


def default_fail_500_rate() -> float:
    return getattr(settings, "SANDBOX_FAIL_500_RATE", 0.0)


def default_fail_429_rate() -> float:
    return getattr(settings, "SANDBOX_FAIL_429_RATE", 0.0)


def default_slow_rate() -> float:
    return getattr(settings, "SANDBOX_SLOW_RATE", 0.0)


def default_slow_s() -> float:
    return getattr(settings, "SANDBOX_SLOW_S", 0.0)


def default_retry_after_s() -> int:
    return getattr(settings, "SANDBOX_RETRY_AFTER_S", 1)


def default_rate_clock() -> str:
    return getattr(settings, "SANDBOX_RATE_CLOCK", RateClock.ARRIVAL.value)


def default_jitter_s() -> float:
    return getattr(settings, "SANDBOX_LATENCY_JITTER_S", 0.0)


def default_refuse_history_first() -> bool:
    return getattr(settings, "SANDBOX_REFUSE_HISTORY_FIRST", False)


class SandboxConfig(models.Model):
    """The sandbox's behaviour, one row, editable at run time (defaults: ``SANDBOX_*``)."""

    token_lifetime_s = models.IntegerField(
        _("token lifetime (s)"), default=default_token_lifetime_s
    )
    rate_interval_s = models.FloatField(
        _("seconds between requests"),
        default=default_rate_interval_s,
        validators=[MinValueValidator(0.0)],
        help_text=_("At most one migrate request per interval; 0 turns the limit off."),
    )
    rate_clock = models.CharField(
        _("rate limit clock"),
        max_length=16,
        choices=RateClock.choices,
        default=default_rate_clock,
        help_text=_(
            "Arrival: requests are compared by when they reached the server, whatever order "
            "they are decided in. Processing: by when the sandbox began to handle them."
        ),
    )
    hourly_cap = models.PositiveIntegerField(
        _("requests per hour"),
        default=default_hourly_cap,
        help_text=_("At most this many migrate requests per hour; 0 turns the cap off."),
    )
    fail_500_rate = models.FloatField(
        _("share answered 500"), default=default_fail_500_rate, validators=RATE_VALIDATORS
    )
    fail_429_rate = models.FloatField(
        _("share answered 429"), default=default_fail_429_rate, validators=RATE_VALIDATORS
    )
    slow_rate = models.FloatField(
        _("share answered slowly"),
        default=default_slow_rate,
        validators=RATE_VALIDATORS,
        help_text=_("A slow request is processed first, then answered after the delay."),
    )
    slow_s = models.FloatField(
        _("slow answer delay (s)"), default=default_slow_s, validators=[MinValueValidator(0.0)]
    )
    jitter_s = models.FloatField(
        _("network jitter (s)"),
        default=default_jitter_s,
        validators=[MinValueValidator(0.0)],
        help_text=_(
            "Each migrate request arrives up to this much later (a uniform draw): it is "
            "counted, recorded and processed that much later; 0 turns it off."
        ),
    )
    retry_after_s = models.PositiveIntegerField(
        _("Retry-After of injected 429s (s)"), default=default_retry_after_s
    )
    reject_ids = models.JSONField(
        _("rejected legacy ids"),
        default=list,
        blank=True,
        help_text=_("A request carrying any of these ids fails with 422, naming no customer."),
    )
    refuse_history_first = models.BooleanField(
        _("refuse history before its customer"),
        default=default_refuse_history_first,
        help_text=_(
            "Transactions or events for a customer id the sandbox has not received through "
            "customers/migrate yet fail with 422, naming the ids."
        ),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("sandbox configuration")
        verbose_name_plural = _("sandbox configuration")
        constraints = [
            models.CheckConstraint(condition=Q(pk=SINGLETON_PK), name="sandbox_config_singleton"),
        ]

    def __str__(self) -> str:
        return str(_("Sandbox configuration"))

    def clean(self) -> None:
        ids = self.reject_ids
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValidationError({"reject_ids": ERR_REJECT_IDS})

    @classmethod
    def current(cls) -> "SandboxConfig":
        """The one configuration row, created from the settings on first use."""
        config, _created = cls.objects.get_or_create(pk=SINGLETON_PK)
        return config


class SandboxRateWindow(models.Model):
    """The rate limiter's state, one row, updated under a row lock by every process."""

    last_request_at = models.DateTimeField(_("last request at"), null=True, blank=True)
    # When the most recently counted requests arrived, in microseconds since the epoch,
    # ascending: the arrival clock compares a request with each of them (see ratelimit.py).
    recent_arrivals = models.JSONField(_("recently counted arrivals"), default=list, blank=True)
    window_started_at = models.DateTimeField(_("hour window started at"), null=True, blank=True)
    window_count = models.PositiveIntegerField(_("requests in the hour window"), default=0)

    class Meta:
        verbose_name = _("sandbox rate window")
        constraints = [
            models.CheckConstraint(condition=Q(pk=SINGLETON_PK), name="sandbox_rate_singleton"),
        ]

    def __str__(self) -> str:
        return f"{self.window_count} since {self.window_started_at}"


class SandboxScriptedAnswer(models.Model):
    """An answer the next migrate request gets, in order of creation.

    Status 201 means "process normally" (a delay then models an answer lost after the
    request was accepted); any other status is answered without processing.
    """

    status_code = models.PositiveSmallIntegerField(_("status code"))
    retry_after_s = models.PositiveIntegerField(_("Retry-After (s)"), null=True, blank=True)
    delay_s = models.FloatField(
        _("delay before answering (s)"), default=0.0, validators=[MinValueValidator(0.0)]
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    consumed_at = models.DateTimeField(_("consumed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("scripted answer")
        verbose_name_plural = _("scripted answers")
        ordering = ["pk"]
        indexes = [models.Index(fields=["consumed_at", "id"], name="sandbox_script_queue_idx")]

    def __str__(self) -> str:
        return f"{self.status_code} (+{self.delay_s:g} s)"


class SandboxTokenRequest(models.Model):
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    is_granted = models.BooleanField(_("granted"))
    expires_at = models.DateTimeField(_("token expires at"), null=True, blank=True)

    class Meta:
        verbose_name = _("sandbox token request")
        verbose_name_plural = _("sandbox token requests")
        ordering = ["-pk"]

    def __str__(self) -> str:
        return (
            f"{self.requested_at:%Y-%m-%d %H:%M:%S} {'granted' if self.is_granted else 'refused'}"
        )


class SandboxRequest(models.Model):
    """One migrate request as the sandbox answered it: customers, transactions or events."""

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", _("Customers")
        TRANSACTIONS = "transactions", _("Transactions")
        EVENTS = "events", _("Events")

    class Reason(models.TextChoices):
        ACCEPTED = "accepted", _("Accepted")
        UNAUTHORIZED = "unauthorized", _("Unauthorized")
        SCRIPTED = "scripted", _("Scripted answer")
        RATE_LIMITED = "rate_limited", _("Rate limited")
        INJECTED_429 = "injected_429", _("Injected 429")
        INJECTED_500 = "injected_500", _("Injected 500")
        UNSUPPORTED_MEDIA = "unsupported_media", _("Not JSON content")
        BAD_REQUEST = "bad_request", _("Bad request")
        TOO_LARGE = "too_large", _("Too many customers")
        INVALID_ENTRY = "invalid_entry", _("Contract violation")
        CONFLICT = "conflict", _("Refused by the account")
        HISTORY_FIRST = "history_first", _("History before its customer")

    kind = models.CharField(
        _("endpoint"), max_length=16, choices=Kind.choices, default=Kind.CUSTOMERS
    )

    received_at = models.DateTimeField(
        _("received at"),
        help_text=_(
            "When the rate limiter counted the request: its arrival at the server, or when "
            "the sandbox began to handle it (the configuration's clock), plus any jitter."
        ),
    )
    status_code = models.PositiveSmallIntegerField(_("status answered"))
    reason = models.CharField(_("reason"), max_length=32, choices=Reason.choices)
    details = models.TextField(_("details"), blank=True)
    customer_count = models.PositiveIntegerField(_("customers"), default=0)
    item_count = models.PositiveIntegerField(
        _("transactions or events"),
        default=0,
        help_text=_("What a history request carried in all, over its customers' entries."),
    )
    new_count = models.PositiveIntegerField(_("new customers"), default=0)
    duplicate_count = models.PositiveIntegerField(_("customers received again"), default=0)
    duration_s = models.FloatField(
        _("duration (s)"), help_text=_("Time to the answer, the injected delay included.")
    )
    delay_s = models.FloatField(_("injected delay (s)"), default=0.0)
    jitter_s = models.FloatField(
        _("network jitter (s)"),
        default=0.0,
        help_text=_("How much later than it reached the server the request was received."),
    )
    is_accepted = models.BooleanField(_("accepted"), default=False)

    class Meta:
        verbose_name = _("sandbox request")
        verbose_name_plural = _("sandbox requests")
        ordering = ["-pk"]
        indexes = [models.Index(fields=["is_accepted"], name="sandbox_request_accepted_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.status_code} ({self.customer_count} customers)"


class SandboxCustomer(models.Model):
    """A customer the sandbox's Masivo account holds: ``id`` and ``email`` are unique."""

    legacy_id = models.CharField(_("legacy id"), max_length=255, unique=True)
    # Lower-cased; null when the customer came without one.
    email = models.CharField(_("email"), max_length=254, null=True, blank=True, unique=True)
    request = models.ForeignKey(
        SandboxRequest,
        verbose_name=_("first request"),
        on_delete=models.CASCADE,
        related_name="customers",
    )
    last_request = models.ForeignKey(
        SandboxRequest,
        verbose_name=_("last request"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    times_received = models.PositiveIntegerField(_("times received"), default=1)
    first_received_at = models.DateTimeField(_("first received at"))
    last_received_at = models.DateTimeField(_("last received at"))

    class Meta:
        verbose_name = _("sandbox customer")
        verbose_name_plural = _("sandbox customers")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.legacy_id


class SandboxHistoryEntry(models.Model):
    """One customer's entry of an accepted transactions or events request: whose, how
    many items, and whether the account held the customer when it arrived."""

    kind = models.CharField(_("endpoint"), max_length=16, choices=SandboxRequest.Kind.choices)
    legacy_id = models.CharField(_("legacy id"), max_length=255)
    item_count = models.PositiveIntegerField(_("transactions or events"))
    # The entry's transactions or events as they arrived, to compare with what was staged.
    items = models.JSONField(_("items as received"), default=list, blank=True)
    request = models.ForeignKey(
        SandboxRequest,
        verbose_name=_("request"),
        on_delete=models.CASCADE,
        related_name="history_entries",
    )
    has_customer = models.BooleanField(
        _("customer received before"),
        help_text=_("Whether customers/migrate had brought this id when its history arrived."),
    )
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        verbose_name = _("sandbox history entry")
        verbose_name_plural = _("sandbox history entries")
        ordering = ["pk"]
        indexes = [models.Index(fields=["kind", "legacy_id"], name="sandbox_history_id_idx")]

    def __str__(self) -> str:
        return f"{self.legacy_id}: {self.item_count} {self.kind}"
