"""A mapping profile: how files of one kind in a legacy system's own shape are read."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

KIND_CHOICES = [
    ("customers", _("customers")),
    ("balances", _("balances")),
    ("devices", _("devices")),
    ("metrics", _("metrics")),
    ("transactions", _("transactions")),
    ("events", _("events")),
]


class MappingProfile(models.Model):
    """A named mapping document (the JSON format of ``customers.mapping``), remembered for
    the set of headers it last read, so a second file with those headers is pre-mapped."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=KIND_CHOICES)
    document = models.JSONField(
        _("mapping"),
        help_text=_("For each field of the kind, where its value comes from (JSON)."),
    )
    header_signature = models.CharField(
        _("headers"), max_length=64, blank=True, db_index=True, editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("mapping profile")
        verbose_name_plural = _("mapping profiles")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
