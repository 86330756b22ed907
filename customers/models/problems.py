"""What validation found wrong with a batch's staged customers."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from console.messages import Message, message_render
from customers.models.batches import StagingBatch
from customers.models.staged import StagedCustomer


class CustomerProblem(models.Model):
    """One reason a staged customer would be refused by Masivo, found by validation.

    Its message is read later, by others, in their language: it is kept untranslated
    (``message_template`` and ``message_params``, a ``console.messages.Message``) and
    rendered for each reader (``get_message_display``). ``message`` holds it in English,
    to search, and is what is shown when there is no template: problems stored before
    templates were, and words from a library kept as they are.
    """

    class Code(models.TextChoices):
        REQUIRED = "required", _("Required")
        INVALID = "invalid", _("Invalid value")
        DUPLICATE_ID = "duplicate_id", _("Duplicate id")
        DUPLICATE_EMAIL = "duplicate_email", _("Duplicate email")
        MISSING_CUSTOMER = "missing_customer", _("Missing customer")
        ALREADY_SENT = "already_sent", _("Already sent")
        UNRECONCILED = "unreconciled", _("Transactions do not match the balance")

    batch = models.ForeignKey(
        StagingBatch, verbose_name=_("batch"), on_delete=models.CASCADE, related_name="problems"
    )
    customer = models.ForeignKey(
        StagedCustomer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="problems",
        null=True,
        blank=True,
    )
    legacy_id = models.CharField(_("legacy id"), max_length=255)
    field = models.CharField(_("field"), max_length=128)
    code = models.CharField(_("problem"), max_length=32, choices=Code.choices)
    message = models.TextField(_("message"))
    message_template = models.TextField(_("message template"), blank=True, default="")
    message_params = models.JSONField(_("message parameters"), blank=True, default=dict)
    other_batch = models.ForeignKey(
        StagingBatch,
        verbose_name=_("other batch"),
        on_delete=models.SET_NULL,
        related_name="+",
        null=True,
        blank=True,
    )

    class Meta:
        verbose_name = _("problem")
        verbose_name_plural = _("problems")
        ordering = ["batch_id", "legacy_id", "field"]
        indexes = [
            models.Index(fields=["batch", "code"], name="problem_batch_code_idx"),
            models.Index(fields=["batch", "field"], name="problem_batch_field_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.legacy_id}.{self.field}: {self.get_message_display()}"

    @classmethod
    def with_message(cls, message: Message, **fields) -> "CustomerProblem":
        """A problem (not saved) that says ``message``: kept untranslated, and in English.
        How every producer of problems builds them."""
        if message.is_verbatim:
            return cls(**fields, message=message.template)
        return cls(
            **fields,
            message=message.english(),
            message_template=message.template,
            message_params=message.params_json(),
        )

    def get_message_display(self) -> str:
        """The message in the active language (as stored, when it has no template)."""
        if not self.message_template:
            return self.message
        return message_render(self.message_template, self.message_params)
