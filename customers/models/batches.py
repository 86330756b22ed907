"""A staging batch: what an operator stages, reviews, approves and submits as one."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from console.states import sources_of


class StagingBatch(models.Model):
    class Status(models.TextChoices):
        """Where a batch is in its life::

            draft ──validate──> validated ──approve──> approved ──submit──> submitted
              ^                     │                     │
              ├── edit, import, ────┘                     │
              │   reopen, failed validation               │
              └───────────────────── reopen ──────────────┘

        Only ``draft`` and ``validated`` batches accept imports and edits; any change
        to a validated batch (an edit, an import, a reopen, or a validation that finds a
        problem) sends it back to ``draft``. ``StagingBatch.TRANSITIONS`` is this diagram
        as a map; every status change goes through ``customers.services.batch_transition``.
        """

        DRAFT = "draft", _("Draft")
        VALIDATED = "validated", _("Validated")
        APPROVED = "approved", _("Approved")
        SUBMITTED = "submitted", _("Submitted")

    # Statuses that accept imports and edits, and so validation.
    EDITABLE_STATUSES = (Status.DRAFT, Status.VALIDATED)
    # Statuses whose staged data has been validated: its exact request bodies can be shown.
    DRY_RUN_STATUSES = (Status.VALIDATED, Status.APPROVED, Status.SUBMITTED)
    TRANSITIONS: dict[str, tuple[str, ...]] = {
        Status.DRAFT: (Status.VALIDATED,),
        Status.VALIDATED: (Status.DRAFT, Status.APPROVED),
        Status.APPROVED: (Status.DRAFT, Status.SUBMITTED),
        Status.SUBMITTED: (),
    }
    # Read off the map: where approving and reopening start from.
    APPROVABLE_STATUSES = sources_of(TRANSITIONS, Status.APPROVED)
    REOPENABLE_STATUSES = sources_of(TRANSITIONS, Status.DRAFT)

    name = models.CharField(_("name"), max_length=200, unique=True)
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default="UTC",
        help_text=_("Dates without an offset in this batch's files are read in this time zone."),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    last_imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("last imported by"),
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    last_imported_at = models.DateTimeField(_("last imported at"), null=True, blank=True)
    # Everyone who imported into the batch or changed its staged rows: none of them may
    # approve it (the four-eyes rule).
    stagers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("staged by"), related_name="+", blank=True
    )
    validated_at = models.DateTimeField(_("validated at"), null=True, blank=True)
    validated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("validated by"),
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved by"),
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    # The version of the batch's staged data, kept by the database (customers.versioning):
    # any change to a staged row moves it. Validation and approval record the one they saw.
    content_version = models.PositiveBigIntegerField(
        _("staged data version"), default=0, editable=False
    )
    validated_version = models.PositiveBigIntegerField(
        _("version validated"), null=True, blank=True, editable=False
    )
    approved_version = models.PositiveBigIntegerField(
        _("version approved"), null=True, blank=True, editable=False
    )
    # The version at which every staged row's own entry was known to pass the contract, and
    # the contract it passed (customers.services.entries): validation checks them again
    # only when either differs.
    entries_checked_version = models.PositiveBigIntegerField(
        _("version whose entries were checked"), null=True, blank=True, editable=False
    )
    entries_checked_contract = models.CharField(
        _("contract the entries were checked with"), max_length=64, blank=True, editable=False
    )

    customer_count = models.PositiveIntegerField(_("customers"), default=0)
    balance_count = models.PositiveIntegerField(_("balances"), default=0)
    device_count = models.PositiveIntegerField(_("devices"), default=0)
    metric_count = models.PositiveIntegerField(_("metrics"), default=0)
    transaction_count = models.PositiveIntegerField(_("transactions"), default=0)
    event_count = models.PositiveIntegerField(_("events"), default=0)
    valid_count = models.PositiveIntegerField(_("valid"), default=0)
    invalid_count = models.PositiveIntegerField(_("invalid"), default=0)
    excluded_count = models.PositiveIntegerField(_("excluded"), default=0)

    class Meta:
        verbose_name = _("staging batch")
        verbose_name_plural = _("staging batches")
        ordering = ["-created_at", "-pk"]
        permissions = [
            ("import_stagingbatch", _("Can import files into a staging batch")),
            ("approve_stagingbatch", _("Can approve a staging batch")),
            ("submit_stagingbatch", _("Can submit a staging batch to Masivo")),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_editable(self) -> bool:
        """Whether files may be imported and rows edited (the services refuse otherwise)."""
        return self.status in self.EDITABLE_STATUSES

    @property
    def can_dry_run(self) -> bool:
        """Whether its exact request bodies can be shown (the services refuse otherwise)."""
        return self.status in self.DRY_RUN_STATUSES
