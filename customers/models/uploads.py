"""A file checked and staged by a worker in the background."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from customers.models.batches import StagingBatch
from customers.row_problems import RowProblem


class OnProblems(models.TextChoices):
    """What staging a file does with rows that validation would flag (a bad email, a
    missing required field, a duplicate email, a customer another batch already sent):
    refuse the whole file, or stage it and leave those rows for validation to flag, to be
    fixed or excluded. Rows that cannot be stored at all always refuse the file."""

    REFUSE = "refuse", _("Stage nothing")
    FLAG = "flag", _("Stage the file and flag these rows for fix or exclude")


class StagingUpload(models.Model):
    """A file too big for one request, checked and staged by a worker in the background."""

    class Status(models.TextChoices):
        """Where a background file is::

            checking ──checked──> ready ──confirm──> staging ──staged──> staged
                │                                       │
                └──problems──────> refused <──problems──┘

        ``refused`` keeps every problem found; nothing is staged from a refused file.
        ``StagingUpload.TRANSITIONS`` is this diagram as a map; every status change goes
        through ``customers.services.upload_transition``.
        """

        CHECKING = "checking", _("Checking")
        READY = "ready", _("Ready to stage")
        STAGING = "staging", _("Staging")
        STAGED = "staged", _("Staged")
        REFUSED = "refused", _("Refused")

    # A worker is reading the file.
    ACTIVE_STATUSES = (Status.CHECKING, Status.STAGING)
    TRANSITIONS: dict[str, tuple[str, ...]] = {
        Status.CHECKING: (Status.READY, Status.REFUSED),
        Status.READY: (Status.STAGING,),
        Status.STAGING: (Status.STAGED, Status.REFUSED),
        Status.STAGED: (),
        Status.REFUSED: (),
    }

    batch = models.ForeignKey(
        StagingBatch, verbose_name=_("batch"), on_delete=models.CASCADE, related_name="uploads"
    )
    kind = models.CharField(_("kind"), max_length=16)
    file = models.FileField(_("file"), upload_to="uploads/%Y/%m/")
    file_name = models.CharField(_("file name"), max_length=255)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.CHECKING
    )
    row_estimate = models.PositiveIntegerField(_("rows (estimate)"), default=0)
    row_count = models.PositiveIntegerField(_("rows read"), default=0)
    # The first problems (``PROBLEMS_SHOWN``), each where it is and its message kept
    # untranslated (``RowProblem.as_json``; read with ``problem_lines``), and how many
    # there were in all. A file checked before messages were kept has lines of text.
    problems = models.JSONField(_("problems"), default=list, blank=True)
    problem_count = models.PositiveIntegerField(_("problems found"), default=0)
    staged = models.JSONField(_("staged"), default=dict, blank=True)
    # Chosen when the file is confirmed: what staging does with rows validation would flag.
    on_problems = models.CharField(
        _("rows with problems"),
        max_length=8,
        choices=OnProblems.choices,
        default=OnProblems.REFUSE,
    )
    mapping = models.ForeignKey(
        "customers.MappingProfile",
        verbose_name=_("mapping profile"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="uploads",
    )
    # The mapping as it was when the file was read (a profile may change later).
    mapping_document = models.JSONField(_("mapping used"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("uploaded by"), on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("background upload")
        verbose_name_plural = _("background uploads")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.file_name

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    def problem_lines(self) -> list[str]:
        """The problems kept, one line each naming the file, row and column, in the active
        language (as ``StagingResult.messages`` says them); a line of text kept before
        messages were kept untranslated is shown as it was written."""
        return [
            RowProblem.from_json(kept).line(self.file_name) if isinstance(kept, dict) else kept
            for kept in self.problems
        ]
