"""The admin's file import: django-import-export's views aimed at one staging batch."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportMixin
from import_export.forms import ConfirmImportForm, ImportForm

from console.errors import StateConflict, error_text
from customers.formats import STAGING_FORMATS, FileReadError
from customers.resources import STAGING_RESOURCES
from customers.selectors import editable_batches
from customers.services import needs_background, upload_create, upload_size_check
from customers.staging import grouped, staged_text


class BatchImportForm(ImportForm):
    batch = forms.ModelChoiceField(
        queryset=editable_batches(),
        label=_("Batch"),
        help_text=_("Only draft and validated batches accept files."),
    )
    field_order = ["batch", "resource", "import_file", "format"]

    def __init__(self, formats, resources, **kwargs):
        super().__init__(formats, resources, **kwargs)
        self.fields["batch"].queryset = editable_batches()
        self.fields["resource"].label = _("Kind of file")
        self.fields["format"].help_text = _("CSV, TSV, XLSX or JSON; guessed from the file name.")

    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        upload_size_check(size=upload.size)
        return upload


class BatchConfirmImportForm(ConfirmImportForm):
    batch = forms.ModelChoiceField(queryset=editable_batches(), widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["batch"].queryset = editable_batches()


class BatchImportMixin(ImportMixin):
    """django-import-export's import views, aimed at one staging batch."""

    resource_classes = STAGING_RESOURCES
    import_form_class = BatchImportForm
    confirm_form_class = BatchConfirmImportForm
    import_template_name = "admin/customers/stagingbatch/import.html"
    skip_admin_log = True

    def get_import_formats(self):
        return STAGING_FORMATS

    def get_import_resource_kwargs(self, request, **kwargs):
        form = kwargs.get("form")
        batch = getattr(form, "cleaned_data", {}).get("batch") if form is not None else None
        return {"batch": batch, "user": request.user}

    def get_import_form_initial(self, request):
        initial = super().get_import_form_initial(request)
        if request.GET.get("batch", "").isdigit():
            initial["batch"] = int(request.GET["batch"])
        return initial

    def get_confirm_form_initial(self, request, import_form):
        initial = super().get_confirm_form_initial(request, import_form)
        if import_form is not None:
            initial["batch"] = import_form.cleaned_data["batch"].pk
        return initial

    def import_action(self, request, **kwargs):
        """Files too big for one request are checked and staged by a worker instead."""
        if request.method == "POST" and self.has_import_permission(request):
            form = self.create_import_form(request)
            if form.is_valid():
                upload_file = form.cleaned_data["import_file"]
                content = b"".join(upload_file.chunks())
                if needs_background(file_name=upload_file.name, content=content):
                    return self._background_import(request, form, content)
                upload_file.seek(0)
        return super().import_action(request, **kwargs)

    def _background_import(self, request, form, content: bytes) -> HttpResponseRedirect:
        """Hand the file to a worker, and go back to the batch's page to watch it."""
        batch = form.cleaned_data["batch"]
        resource = self.get_import_resource_classes(request)[
            int(form.cleaned_data.get("resource") or 0)
        ]
        url = reverse("admin:customers_stagingbatch_change", args=[batch.pk])
        try:
            upload = upload_create(
                batch=batch,
                kind=resource.kind,
                file_name=form.cleaned_data["import_file"].name,
                content=content,
                user=request.user,
            )
        except StateConflict as error:
            messages.error(request, error_text(error))
            return HttpResponseRedirect(url)
        messages.info(
            request,
            _(
                "%(file)s has about %(rows)s rows: a worker is checking it in the "
                "background. Its progress shows below; you can leave this page."
            )
            % {"file": upload.file_name, "rows": grouped(upload.row_estimate)},
        )
        return HttpResponseRedirect(url + "#uploads")

    def add_data_read_fail_error_to_form(self, form, e):
        if isinstance(e, FileReadError):
            form.add_error("import_file", str(e))
        else:
            super().add_data_read_fail_error_to_form(form, e)

    def process_result(self, result, request):
        if result.has_errors():
            # Something changed between preview and confirm: show why, stage nothing.
            context = self.admin_site.each_context(request)
            context.update(
                {"title": _("Import"), "opts": self.model._meta, "result": result, "form": None}
            )
            return TemplateResponse(request, [self.import_template_name], context, status=400)
        staged = staged_text(result.staged)
        messages.success(
            request,
            _("Staged %(staged)s from %(file)s into batch “%(batch)s”.")
            % {"staged": staged, "file": result.file_name, "batch": result.batch.name},
        )
        url = reverse("admin:customers_stagingbatch_change", args=[result.batch.pk])
        return HttpResponseRedirect(url)
