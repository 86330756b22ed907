"""The pace of requests to Masivo, shared by every worker (see migrations_jobs.pacing)."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

PACING_PK = 1


class PacingState(models.Model):
    """The one row (pk 1) that every worker locks to book a request slot: when the next
    request may leave, shared by every process and host through the database."""

    next_slot_at = models.DateTimeField(_("next request not before"), null=True, blank=True)
    # When the latest request known to have left did: how long Masivo has been idle.
    last_left_at = models.DateTimeField(_("last request left at"), null=True, blank=True)
    # The latest requests' round trips (leaving to answer, in seconds), oldest first.
    round_trips = models.JSONField(_("recent round trips (s)"), default=list, blank=True)
    # The margin learnt from Masivo's 429s (seconds added to the interval), and when it
    # last changed: it grows on a 429 and decays slowly after.
    learnt_margin_s = models.FloatField(_("learnt margin (s)"), default=0.0)
    learnt_margin_at = models.DateTimeField(_("learnt margin set at"), null=True, blank=True)
    rate_limited_count = models.PositiveIntegerField(_("429 answers"), default=0)
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
