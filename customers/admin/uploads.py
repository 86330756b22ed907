"""The batch page's panel of files checked and staged in the background: their progress
(polled as JSON by the page) and each file's page, which confirms its staging."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from console.errors import StateConflict, error_text
from customers.models import OnProblems, StagingBatch, StagingUpload
from customers.models.mappings import KIND_CHOICES
from customers.row_problems import more_problems_text
from customers.services import upload_confirm, upload_progress, user_may_see_customers

UPLOAD_TEMPLATE = "admin/customers/stagingbatch/upload.html"
# How many of a batch's latest files the panel shows.
PANEL_UPLOADS = 10


def on_problems_field() -> forms.ChoiceField:
    """The operator's choice for rows that validation would flag; "stage nothing" unless
    they pick the other."""
    return forms.ChoiceField(
        label=_("Rows with problems"),
        choices=OnProblems.choices,
        initial=OnProblems.REFUSE,
        required=False,
        widget=forms.RadioSelect,
    )


class UploadConfirmForm(forms.Form):
    on_problems = on_problems_field()

    def clean_on_problems(self) -> str:
        return self.cleaned_data.get("on_problems") or OnProblems.REFUSE


def _mapping_label(upload: StagingUpload) -> str:
    """How the file's columns were read: its profile, a mapping, or as they are."""
    if upload.mapping_id is not None:
        return str(_("profile “%(name)s”") % {"name": upload.mapping.name})
    if upload.mapping_document:
        return str(_("a mapping"))
    return ""


# What each kind of file is called (a nested file is named as the import form names it).
KIND_LABELS = {**dict(KIND_CHOICES), "nested": _("nested request body (JSON)")}


def upload_row(batch: StagingBatch, upload: StagingUpload) -> dict:
    """One file of the panel, as the page's template and its JSON poll read it."""
    done = upload_progress(upload=upload)
    total = max(upload.row_estimate, done, 1)
    return {
        "id": upload.pk,
        "file_name": upload.file_name,
        "kind": str(KIND_LABELS.get(upload.kind, upload.kind)),
        "status": upload.status,
        "status_label": str(upload.get_status_display()),
        "rows": done,
        "total": total,
        "percent": 100 if not upload.is_active else min(99, round(100 * done / total)),
        "problem_count": upload.problem_count,
        "staged": upload.staged,
        "staged_text": ", ".join(
            f"{number_format(n, force_grouping=True)} {KIND_LABELS.get(kind, kind)}"
            for kind, n in (upload.staged or {}).items()
        ),
        "is_active": upload.is_active,
        "staged_by": upload.created_by.get_username(),
        "staged_at": upload.created_at,
        "mapping": _mapping_label(upload),
        "url": reverse("admin:customers_stagingbatch_upload", args=[batch.pk, upload.pk]),
    }


class BatchUploadsMixin:
    """The uploads panel's views for the batch admin (``upload_urls`` joins its URLs)."""

    def upload_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<int:object_id>/uploads/progress/",
                self.admin_site.admin_view(self.uploads_progress_view),
                name="{}_{}_uploads_progress".format(*info),
            ),
            path(
                "<int:object_id>/uploads/<int:upload_id>/",
                self.admin_site.admin_view(self.upload_view),
                name="{}_{}_upload".format(*info),
            ),
        ]

    def upload_rows(self, batch: StagingBatch) -> list[dict]:
        uploads = batch.uploads.select_related("created_by", "mapping")[:PANEL_UPLOADS]
        return [upload_row(batch, upload) for upload in uploads]

    def uploads_progress_view(self, request: HttpRequest, object_id: int) -> JsonResponse:
        batch = get_object_or_404(StagingBatch, pk=object_id)
        if not self.has_view_permission(request, batch):
            raise PermissionDenied
        rows = self.upload_rows(batch)
        return JsonResponse({"uploads": rows, "active": any(r["is_active"] for r in rows)})

    def upload_view(self, request: HttpRequest, object_id: int, upload_id: int) -> HttpResponse:
        """A background file: its problems, and the confirmation that stages it."""
        batch = get_object_or_404(StagingBatch, pk=object_id)
        upload = get_object_or_404(StagingUpload, pk=upload_id, batch=batch)
        if not self.has_view_permission(request, batch):
            raise PermissionDenied
        change_url = reverse("admin:customers_stagingbatch_change", args=[batch.pk])
        if request.method == "POST":
            return self._upload_confirm(request, upload, change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": batch,
            "upload": upload,
            "more_problems": (
                more_problems_text(upload.problem_count - len(upload.problems))
                if upload.problem_count > len(upload.problems)
                else ""
            ),
            "change_url": change_url,
            "kind_label": KIND_LABELS.get(upload.kind, upload.kind),
            "staged_rows": [
                (KIND_LABELS.get(kind, kind), n) for kind, n in (upload.staged or {}).items()
            ],
            # Problems quote customers' values: their lines only for those who may see them.
            "can_see_problems": user_may_see_customers(user=request.user),
            "can_confirm": upload.status == StagingUpload.Status.READY
            and self.has_import_permission(request),
            "confirm_form": UploadConfirmForm(),
            "title": _("File %(file)s") % {"file": upload.file_name},
        }
        return TemplateResponse(request, UPLOAD_TEMPLATE, context)

    def _upload_confirm(
        self, request: HttpRequest, upload: StagingUpload, change_url: str
    ) -> HttpResponse:
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = UploadConfirmForm(request.POST)
        on_problems = form.cleaned_data["on_problems"] if form.is_valid() else OnProblems.REFUSE
        try:
            upload_confirm(upload=upload, user=request.user, on_problems=on_problems)
        except StateConflict as error:
            messages.error(request, error_text(error))
        else:
            messages.info(
                request,
                _("A worker is staging %(file)s; its progress shows below.")
                % {"file": upload.file_name},
            )
        return HttpResponseRedirect(change_url + "#uploads")
