"""The console's deliveries: which customer id it holds for which Masivo account."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from customers.models import StagedCustomer
from migrations_jobs.models.chunks import JobChunk
from migrations_jobs.models.jobs import MigrationJob


class Delivery(models.Model):
    """The console's hold on one customer id in one Masivo account: at most one row per
    account and id (a unique constraint), whatever the batches, jobs and workers.

    A chunk takes its customers' deliveries when it is claimed, in the claim's
    transaction (``services.deliveries``); a customer whose id another staged customer
    already holds is skipped, not sent. Only an operator's "send again" takes a delivery
    over from another staged customer (or from the same one, once sent)::

        (none) ──claim──> booked ──chunk accepted (201)──────────────> sent
                            │  └──given up after an unknown outcome───> uncertain
                            └──refused, cancelled before it left──> (row deleted)
        sent, uncertain ──send again (take-over at the next claim)──> booked

    ``uncertain`` blocks other batches like ``sent`` does: Masivo may have the customer.
    """

    class Status(models.TextChoices):
        BOOKED = "booked", _("Being sent")
        SENT = "sent", _("Sent")
        UNCERTAIN = "uncertain", _("May have been sent")

    account = models.CharField(_("Masivo account"), max_length=200)
    legacy_id = models.CharField(_("legacy id"), max_length=255)
    customer = models.ForeignKey(
        StagedCustomer,
        verbose_name=_("staged customer"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    job = models.ForeignKey(
        MigrationJob, verbose_name=_("job"), on_delete=models.PROTECT, related_name="deliveries"
    )
    chunk = models.ForeignKey(
        JobChunk,
        verbose_name=_("chunk"),
        on_delete=models.SET_NULL,
        related_name="deliveries",
        null=True,
        blank=True,
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    booked_at = models.DateTimeField(_("booked at"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    times_sent = models.PositiveIntegerField(
        _("times sent"), default=0, help_text=_("Requests carrying it that Masivo accepted.")
    )

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["account", "legacy_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "legacy_id"], name="delivery_unique_per_account"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.legacy_id} ({self.get_status_display()})"


class TransactionDelivery(models.Model):
    """The console's hold on one customer's transactions in one Masivo account: Masivo
    takes a customer's transactions once, in one entry of one request (CONTRACT.md), so
    the console sends them at most once per account and customer id, whatever the
    batches, jobs and workers. Only an operator's decision on a held chunk sends them
    again::

        (none) ──claim──> booked ──chunk accepted (201), or marked arrived──> sent
                            │  └──cancelled after a request that may have arrived──> uncertain
                            └──refused, cancelled before it left──> (row deleted)

    A chunk of transactions whose outcome is unknown is held, never sent again by itself:
    its deliveries stay booked until an operator decides.
    """

    Status = Delivery.Status

    account = models.CharField(_("Masivo account"), max_length=200)
    legacy_id = models.CharField(_("legacy id"), max_length=255)
    job = models.ForeignKey(
        MigrationJob, verbose_name=_("job"), on_delete=models.PROTECT, related_name="+"
    )
    chunk = models.ForeignKey(
        JobChunk,
        verbose_name=_("chunk"),
        on_delete=models.SET_NULL,
        related_name="transaction_deliveries",
        null=True,
        blank=True,
    )
    status = models.CharField(_("status"), max_length=16, choices=Delivery.Status.choices)
    booked_at = models.DateTimeField(_("booked at"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery of transactions")
        verbose_name_plural = _("deliveries of transactions")
        ordering = ["account", "legacy_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "legacy_id"], name="tx_delivery_unique_per_account"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.legacy_id} ({self.get_status_display()})"
