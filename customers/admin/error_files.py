"""The preview's error file: the uploaded file again, with each row's problems in an
``errors`` column (and, in XLSX, the bad cells highlighted), to fix in a spreadsheet and
upload again.

The preview keeps nothing: the page posts back where the upload waits (import-export's
temporary storage), its kind, format, batch and mapping, and the file is checked again,
as its preview did, to write the problems beside its rows.
"""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from customers.errorfile import error_file
from customers.formats import FileReadError
from customers.models import OnProblems
from customers.selectors import editable_batches
from customers.staging import batch_stage_file

ERR_GONE = _("The uploaded file is no longer available; upload it again.")


class ErrorFileForm(forms.Form):
    """What the preview page posts to download its error file."""

    batch = forms.IntegerField(widget=forms.HiddenInput)
    resource = forms.IntegerField(widget=forms.HiddenInput)
    import_file_name = forms.CharField(widget=forms.HiddenInput)
    original_file_name = forms.CharField(widget=forms.HiddenInput)
    mapping = forms.CharField(required=False, widget=forms.HiddenInput)
    as_format = forms.ChoiceField(choices=[("xlsx", "XLSX"), ("csv", "CSV")])


def error_file_state(
    *, batch, resource: int, import_file_name: str, file_name: str, mapping
) -> dict:
    """The preview's hidden fields for its error file's form."""
    return {
        "batch": batch.pk,
        "resource": resource,
        "import_file_name": import_file_name,
        "original_file_name": file_name,
        "mapping": json.dumps(mapping, ensure_ascii=False) if mapping else "",
    }


class BatchErrorFileMixin:
    """The error file's view for the batch admin (``error_file_urls`` joins its URL)."""

    def error_file_urls(self) -> list:
        return [
            path(
                "import/errors/",
                self.admin_site.admin_view(self.error_file_view),
                name="customers_stagingbatch_import_errors",
            )
        ]

    def error_file_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or not self.has_import_permission(request):
            raise PermissionDenied
        form = ErrorFileForm(request.POST)
        batch = None
        if form.is_valid():
            batch = editable_batches().filter(pk=form.cleaned_data["batch"]).first()
        content = self._waiting_upload(form) if batch is not None else None
        if content is None:
            self.message_user(request, ERR_GONE, level="error")
            return HttpResponseRedirect(reverse("admin:customers_stagingbatch_import"))
        data = form.cleaned_data
        resources = self.get_import_resource_classes(request)
        kind = resources[data["resource"]].kind if data["resource"] < len(resources) else ""
        try:
            mapping = json.loads(data["mapping"]) if data["mapping"] else None
        except ValueError:
            mapping = None
        result = batch_stage_file(
            batch=batch,
            kind=kind,
            file_name=data["original_file_name"],
            content=content,
            user=request.user,
            dry_run=True,
            mapping=mapping,
            on_problems=OnProblems.FLAG,
        )
        try:
            body, name, content_type = error_file(
                file_name=data["original_file_name"],
                content=content,
                problems=result.problems,
                as_format=data["as_format"],
            )
        except FileReadError as exc:
            self.message_user(request, str(exc), level="error")
            return HttpResponseRedirect(reverse("admin:customers_stagingbatch_import"))
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def _waiting_upload(self, form: ErrorFileForm) -> bytes | None:
        storage = self.get_tmp_storage_class()(
            name=form.cleaned_data["import_file_name"],
            read_mode="rb",
            encoding=None,
            **self.get_tmp_storage_class_kwargs(),
        )
        try:
            return storage.read()
        except (OSError, ValueError, SuspiciousOperation):
            return None
