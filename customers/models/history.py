"""The customers' history, staged beside them: transactions (why a balance is what it is)
and events (purchases, from which Masivo recomputes metrics and tiers). CONTRACT.md,
"History: transactions and events".

A history row names its customer by legacy id (``customer_legacy_id``), as its file does.
``customer`` is that customer staged in the same batch, when it is; a customer sent by an
earlier batch is not staged again, so its history has no ``customer`` and validation looks
for it among the customers sent before. Excluding a customer leaves its history out too.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from customers.models.batches import StagingBatch
from customers.models.staged import AMOUNT_DECIMALS, AMOUNT_DIGITS, StagedCustomer


class TransactionType(models.TextChoices):
    ACCUMULATION = "ACCUMULATION", _("Accumulation")
    REDEMPTION = "REDEMPTION", _("Redemption")
    EXPIRATION = "EXPIRATION", _("Expiration")
    MIGRATION = "MIGRATION", _("Migration")
    TRANSFER = "TRANSFER", _("Transfer")
    REVERSAL = "REVERSAL", _("Reversal")


class PaymentMethod(models.TextChoices):
    CREDIT = "CREDIT", _("Credit")
    DEBIT = "DEBIT", _("Debit")
    CASH = "CASH", _("Cash")
    BANK_TRANSFER = "BANK_TRANSFER", _("Bank transfer")
    OTHER = "OTHER", _("Other")


class _HistoryRow(models.Model):
    """What a transaction and an event share: their batch, their customer, their file row."""

    customer_legacy_id = models.CharField(_("customer id"), max_length=255, db_index=True)
    # The row of its file (the header is row 1), for messages that send the operator there.
    source_row = models.PositiveIntegerField(_("row in its file"), null=True, blank=True)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    brand_id = models.CharField(_("brand id"), max_length=255, blank=True)
    # When Masivo accepted the request that carried the row (written by migration jobs
    # through ``customers.services.history_rows_sent``).
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        abstract = True


class StagedTransaction(_HistoryRow):
    batch = models.ForeignKey(
        StagingBatch,
        verbose_name=_("batch"),
        on_delete=models.CASCADE,
        related_name="transactions",
    )
    customer = models.ForeignKey(
        StagedCustomer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="transactions",
        null=True,
        blank=True,
    )
    reward_id = models.UUIDField(_("reward id"), null=True, blank=True)
    type = models.CharField(_("type"), max_length=32, blank=True)
    amount = models.DecimalField(
        _("amount"), max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_DECIMALS, null=True
    )
    store_id = models.CharField(_("store id"), max_length=255, blank=True)
    channel_id = models.CharField(_("channel id"), max_length=255, blank=True)
    funded_by = models.CharField(_("funded by"), max_length=255, blank=True)
    details = models.TextField(_("details"), blank=True)
    cost = models.DecimalField(
        _("cost"), max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_DECIMALS, null=True
    )
    # ``{"type": ..., "order": {...}}`` as the request carries it.
    event = models.JSONField(_("event"), null=True, blank=True)

    class Meta:
        verbose_name = _("staged transaction")
        verbose_name_plural = _("staged transactions")
        ordering = ["batch_id", "customer_legacy_id", "id"]
        indexes = [models.Index(fields=["batch", "customer_legacy_id"])]

    def __str__(self) -> str:
        return f"{self.customer_legacy_id}: {self.type} {self.amount} ({self.reward_id})"


class StagedEvent(_HistoryRow):
    batch = models.ForeignKey(
        StagingBatch, verbose_name=_("batch"), on_delete=models.CASCADE, related_name="events"
    )
    customer = models.ForeignKey(
        StagedCustomer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="events",
        null=True,
        blank=True,
    )
    type = models.CharField(_("type"), max_length=64, blank=True)
    # Absent in the file: true (a migrated purchase was fulfilled).
    fulfilled = models.BooleanField(_("fulfilled"), null=True, blank=True)
    # The order as the request carries it: purchase_id, value, products, shipping, ...
    order = models.JSONField(_("order"), null=True, blank=True)

    class Meta:
        verbose_name = _("staged event")
        verbose_name_plural = _("staged events")
        ordering = ["batch_id", "customer_legacy_id", "id"]
        indexes = [models.Index(fields=["batch", "customer_legacy_id"])]

    def __str__(self) -> str:
        return f"{self.customer_legacy_id}: {self.type}"
