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
from customers.admin.error_files import error_file_state
from customers.admin.uploads import on_problems_field
from customers.formats import STAGING_FORMATS, FileReadError
from customers.mapping import MappingError, table_mapped
from customers.models import MappingProfile, OnProblems
from customers.resources import STAGING_RESOURCES, StagingResult
from customers.selectors import editable_batches
from customers.services import (
    needs_background,
    upload_create,
    upload_record,
    upload_size_check,
)
from customers.services.mappings import profile_remember
from customers.staging import format_for, grouped, staged_text

ERR_FORMAT_UNKNOWN = _(
    "“%(name)s” does not say by its name whether it is CSV, TSV, XLSX or JSON: choose the format."
)


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
        # Without JavaScript nothing fills it in: the file's name then says which it is.
        self.fields["format"].required = False
        self.fields["format"].choices = [
            ("", _("from the file's name")),
            *[c for c in self.fields["format"].choices if c[0] != ""],
        ]

    def clean(self):
        data = super().clean()
        upload = data.get("import_file")
        if upload is not None and data.get("format") in (None, ""):
            fmt = format_for(upload.name)
            if fmt is None:
                self.add_error("format", ERR_FORMAT_UNKNOWN % {"name": upload.name})
            else:
                data["format"] = str(STAGING_FORMATS.index(fmt))
        return data

    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        upload_size_check(size=upload.size)
        return upload


class BatchConfirmImportForm(ConfirmImportForm):
    batch = forms.ModelChoiceField(queryset=editable_batches(), widget=forms.HiddenInput)
    # A file read through a mapping: the mapping document (JSON), and its profile if any.
    mapping = forms.JSONField(required=False, widget=forms.HiddenInput)
    mapping_profile = forms.ModelChoiceField(
        queryset=MappingProfile.objects.all(), required=False, widget=forms.HiddenInput
    )
    # Offered when the preview found only problems that validation would flag.
    on_problems = on_problems_field()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["batch"].queryset = editable_batches()

    def clean_on_problems(self) -> str:
        return self.cleaned_data.get("on_problems") or OnProblems.REFUSE


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
        # The preview lets a file with only flaggable problems through to the confirmation,
        # which asks the operator whether to stage it; the confirmation does as chosen.
        on_problems = OnProblems.FLAG
        if isinstance(form, BatchConfirmImportForm):
            on_problems = form.cleaned_data.get("on_problems") or OnProblems.REFUSE
        return {"batch": batch, "user": request.user, "on_problems": on_problems}

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
                resource = self.get_import_resource_classes(request)[
                    int(form.cleaned_data.get("resource") or 0)
                ]
                fmt = self.get_import_formats()[int(form.cleaned_data["format"])]()
                table = self.foreign_table(kind=resource.kind, fmt=fmt, content=content)
                if table is not None:
                    return self.mapping_step_start(request, form, content, table)
                if needs_background(file_name=upload_file.name, content=content):
                    return self._background_import(request, form, content)
                upload_file.seek(0)
        response = super().import_action(request, **kwargs)
        context = getattr(response, "context_data", None) or {}
        result, form = context.get("result"), context.get("form")
        if result is not None and any(p.row is not None for p in result.problems):
            data = form.cleaned_data
            context["error_file"] = error_file_state(
                batch=data["batch"],
                resource=int(data.get("resource") or 0),
                import_file_name=data["import_file"].tmp_storage_name,
                file_name=data["import_file"].name,
                mapping=None,
            )
        return response

    def _background_import(self, request, form, content: bytes) -> HttpResponseRedirect:
        """Hand the file to a worker, and go back to the batch's page to watch it."""
        resource = self.get_import_resource_classes(request)[
            int(form.cleaned_data.get("resource") or 0)
        ]
        return self.background_import(
            request,
            batch=form.cleaned_data["batch"],
            kind=resource.kind,
            file_name=form.cleaned_data["import_file"].name,
            content=content,
        )

    def background_import(
        self, request, *, batch, kind: str, file_name: str, content: bytes, mapping=None
    ) -> HttpResponseRedirect:
        """Have a worker check ``content`` (read through ``mapping``, if any); answer the
        batch's page, where its progress shows."""
        url = reverse("admin:customers_stagingbatch_change", args=[batch.pk])
        try:
            upload = upload_create(
                batch=batch,
                kind=kind,
                file_name=file_name,
                content=content,
                user=request.user,
                mapping=mapping,
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

    def process_dataset(self, dataset, form, request, **kwargs):
        """Stage the confirmed file (read through its mapping when it came with one), and
        keep it as the batch's record of the file."""
        result = self._stage_confirmed(dataset, form, request, **kwargs)
        if not result.has_errors() and result.staged_total:
            self._record(form, request, result)
        return result

    def _record(self, form, request, result) -> None:
        storage = self.get_tmp_storage_class()(
            name=form.cleaned_data["import_file_name"],
            read_mode="rb",
            encoding=None,
            **self.get_tmp_storage_class_kwargs(),
        )
        upload_record(
            batch=form.cleaned_data["batch"],
            kind=result.kind,
            file_name=form.cleaned_data["original_file_name"],
            content=storage.read(),
            user=request.user,
            result=result,
            mapping=form.cleaned_data.get("mapping_profile"),
        )

    def _stage_confirmed(self, dataset, form, request, **kwargs):
        document = form.cleaned_data.get("mapping")
        if not isinstance(document, dict) or not document:
            return super().process_dataset(dataset, form, request, **kwargs)
        batch = form.cleaned_data["batch"]
        headers = list(dataset.raw_headers)
        try:
            mapped, _document = table_mapped(
                table=dataset,
                kind=document.get("kind"),
                document=document,
                time_zone=batch.time_zone,
            )
        except MappingError as exc:
            result = StagingResult(
                kind=document.get("kind", ""),
                file_name=form.cleaned_data["original_file_name"],
                batch=batch,
            )
            for message in exc.messages:
                result.add_problem(None, "", message)
            return result
        result = super().process_dataset(mapped, form, request, **kwargs)
        result.mapping_document = document
        profile = form.cleaned_data.get("mapping_profile")
        if profile is not None and not result.has_errors():
            profile_remember(profile=profile, headers=headers)
        return result

    def add_data_read_fail_error_to_form(self, form, e):
        if isinstance(e, FileReadError):
            form.add_error("import_file", str(e))
        else:
            super().add_data_read_fail_error_to_form(form, e)

    def process_result(self, result, request):
        url = reverse("admin:customers_stagingbatch_change", args=[result.batch.pk])
        if result.has_errors() and not result.has_unstorable_problems:
            # The operator chose to stage nothing rather than flag these rows.
            messages.info(
                request, _("Nothing was staged from %(file)s.") % {"file": result.file_name}
            )
            return HttpResponseRedirect(url)
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
        if result.problems:
            messages.warning(
                request,
                _(
                    "%(count)s problem(s) in these rows are left for validation to flag: "
                    "validate the batch, then fix or exclude those customers."
                )
                % {"count": grouped(result.problem_count)},
            )
        return HttpResponseRedirect(url)
