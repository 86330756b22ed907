"""The import's mapping step: a file whose headers are not the kind's own is mapped
field by field before its preview.

The upload is kept in import-export's temporary storage while the operator chooses; the
page POSTs back to itself to load a profile or to show the values of newly chosen
columns (so it works without JavaScript), and "Preview" checks the mapping against the
file, saves it as a profile when asked, and shows the usual preview of every row, read
through the mapping, with the confirmation that stages it.
"""

from __future__ import annotations

import json

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from console.errors import ApplicationError, error_text
from customers.admin.error_files import error_file_state
from customers.admin.mapping_form import HIDDEN, MappingStepForm, initial_from
from customers.formats import FileReadError, SourceTable
from customers.mapping import (
    LIKELY,
    MAPPING_KINDS,
    MappingError,
    columns_suggest,
    headers_are_own,
    kind_targets,
    mapping_compile,
    mapping_parse,
)
from customers.mapping.survey import table_survey
from customers.models import MappingProfile, OnProblems
from customers.selectors import editable_batches
from customers.services import needs_background
from customers.services.mappings import profile_for_headers, profile_save
from customers.staging import batch_stage_file

MAPPING_TEMPLATE = "admin/customers/stagingbatch/mapping.html"
ERR_FILE_GONE = _("The uploaded file is no longer available; upload it again.")


class BatchMappingStepMixin:
    """The mapping step's views for the batch admin (``mapping_urls`` joins its URL)."""

    def mapping_urls(self) -> list:
        return [
            path(
                "import/mapping/",
                self.admin_site.admin_view(self.mapping_step_view),
                name="customers_stagingbatch_import_mapping",
            )
        ]

    def foreign_table(self, *, kind: str, fmt, content: bytes) -> SourceTable | None:
        """The file's table when its headers are not ``kind``'s own (None otherwise, or
        when it cannot be read: the usual preview then says why)."""
        if kind not in MAPPING_KINDS:
            return None
        try:
            table = fmt.create_dataset(content)
        except FileReadError:
            return None
        if not isinstance(table, SourceTable):
            return None
        if headers_are_own(kind=kind, headers=table.raw_headers or table.headers):
            return None
        return table

    def mapping_step_start(
        self, request: HttpRequest, import_form, content: bytes, table
    ) -> HttpResponse:
        """The first mapping page for an upload: a saved profile for these headers, or
        the certain suggestions, pre-selected."""
        storage = self.get_tmp_storage_class()(
            read_mode="rb", encoding=None, **self.get_tmp_storage_class_kwargs()
        )
        storage.save(content)
        data = import_form.cleaned_data
        state = {
            "batch": data["batch"].pk,
            "resource": data.get("resource") or "0",
            "format": data["format"],
            "import_file_name": storage.name,
            "original_file_name": data["import_file"].name,
        }
        resource = self.get_import_resource_classes(request)[int(state["resource"])]
        headers = table.raw_headers or table.headers
        surveys = table_survey(table)
        profile = profile_for_headers(kind=resource.kind, headers=headers)
        suggestion = columns_suggest(kind=resource.kind, headers=headers)
        zone = data["batch"].time_zone
        initial = {**state, "profile": profile}
        initial.update(
            initial_from(
                document=profile.document if profile else {}, suggestion=suggestion, time_zone=zone
            )
        )
        if profile is None:
            _initial_guesses(initial, resource.kind, surveys)
        hints = {name: m.column for name, m in suggestion.matches.items() if m.certainty == LIKELY}
        form = MappingStepForm(
            initial=initial,
            kind=resource.kind,
            columns=headers,
            surveys=surveys,
            time_zone=zone,
            hints=hints,
        )
        return self._mapping_page(request, form, data["batch"], profile=profile)

    def mapping_step_view(self, request: HttpRequest) -> HttpResponse:
        """POSTs of the mapping page: load a profile, show values, or preview."""
        if request.method != "POST" or not self.has_import_permission(request):
            raise PermissionDenied
        batch = editable_batches().filter(pk=request.POST.get("batch") or 0).first()
        storage = self.get_tmp_storage_class()(
            name=request.POST.get("import_file_name", ""),
            read_mode="rb",
            encoding=None,
            **self.get_tmp_storage_class_kwargs(),
        )
        try:
            content = storage.read()
            resource = self.get_import_resource_classes(request)[
                int(request.POST.get("resource", 0))
            ]
            fmt = self.get_import_formats()[int(request.POST.get("format", 0))]()
        except (OSError, ValueError, IndexError, SuspiciousOperation):
            content = None
        table = (
            self.foreign_table(kind=resource.kind, fmt=fmt, content=content) if content else None
        )
        if batch is None or table is None:
            self.message_user(request, ERR_FILE_GONE, level="error")
            return HttpResponseRedirect(reverse("admin:customers_stagingbatch_import"))
        headers = table.raw_headers or table.headers
        options = {
            "kind": resource.kind,
            "columns": headers,
            "surveys": table_survey(table),
            "time_zone": batch.time_zone,
        }
        form = MappingStepForm(request.POST, **options)
        if not form.is_valid():
            return self._mapping_page(request, form, batch)
        action = request.POST.get("action")
        if action == "back":
            # From the preview: the mapping as it was, to change it.
            document = _document_or_empty(form.cleaned_data.get("document_json"))
            state = {name: form.cleaned_data[name] for name in HIDDEN}
            initial = {
                **state,
                **initial_from(document=document, suggestion=None, time_zone=batch.time_zone),
            }
            return self._mapping_page(request, MappingStepForm(initial=initial, **options), batch)
        if action == "load" and form.cleaned_data["profile"] is not None:
            profile = form.cleaned_data["profile"]
            state = {
                name: form.cleaned_data[name]
                for name in (
                    "batch",
                    "resource",
                    "format",
                    "import_file_name",
                    "original_file_name",
                )
            }
            initial = {
                **state,
                "profile": profile,
                **initial_from(
                    document=profile.document, suggestion=None, time_zone=batch.time_zone
                ),
            }
            return self._mapping_page(
                request, MappingStepForm(initial=initial, **options), batch, profile=profile
            )
        if action != "preview":
            return self._mapping_page(request, form, batch)
        return self._mapping_preview(request, form, batch, table, content)

    def _mapping_preview(
        self, request, form: MappingStepForm, batch, table, content: bytes
    ) -> HttpResponse:
        document = form.document()
        problems: list[str] = []
        if not form.errors:
            try:
                mapping_compile(
                    mapping_parse(document, kind=form.kind), table, time_zone=batch.time_zone
                )
            except MappingError as exc:
                problems = list(exc.messages)
        if form.errors or problems:
            return self._mapping_page(request, form, batch, problems=problems)
        profile = None
        if name := form.cleaned_data.get("save_as", "").strip():
            try:
                profile = profile_save(
                    name=name, document=document, user=request.user, profile=_same_name(name)
                )
            except ApplicationError as exc:
                return self._mapping_page(request, form, batch, problems=[error_text(exc)])
        file_name = form.cleaned_data["original_file_name"]
        if needs_background(file_name=file_name, content=content):
            return self.background_import(
                request,
                batch=batch,
                kind=form.kind,
                file_name=file_name,
                content=content,
                mapping=profile or document,
            )
        result = batch_stage_file(
            batch=batch,
            kind=form.kind,
            file_name=file_name,
            content=content,
            user=request.user,
            dry_run=True,
            mapping=document,
            # As the usual preview: rows validation would flag are shown, the choice offered.
            on_problems=OnProblems.FLAG,
        )
        return self._mapped_preview(request, form, result, document, profile)

    def _mapped_preview(self, request, form, result, document: dict, profile) -> HttpResponse:
        """The import's preview page, for a file read through ``document``."""
        context = self.admin_site.each_context(request)
        context.update(
            {
                "title": _("Import"),
                "opts": self.model._meta,
                "result": result,
                "mapping_document": document,
                "mapping_profile": profile,
            }
        )
        if any(p.row is not None for p in result.problems):
            context["error_file"] = error_file_state(
                batch=result.batch,
                resource=int(form.cleaned_data["resource"]),
                import_file_name=form.cleaned_data["import_file_name"],
                file_name=form.cleaned_data["original_file_name"],
                mapping=document,
            )
        context["mapping_state"] = {name: form.cleaned_data[name] for name in HIDDEN}
        context["mapping_json"] = json.dumps(document, indent=2, ensure_ascii=False)
        if not result.has_errors():
            state = {
                name: form.cleaned_data[name]
                for name in ("import_file_name", "original_file_name", "format", "resource")
            }
            context["confirm_form"] = self.get_confirm_form_class(request)(
                initial={
                    **state,
                    "batch": result.batch.pk,
                    "mapping": document,
                    "mapping_profile": profile.pk if profile else "",
                }
            )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, [self.import_template_name], context)

    def _mapping_page(
        self, request, form: MappingStepForm, batch, *, profile=None, problems=()
    ) -> HttpResponse:
        context = self.admin_site.each_context(request)
        targets = kind_targets(form.kind)
        context.update(
            {
                "title": _("Map the columns of %(file)s")
                % {"file": form["original_file_name"].value()},
                "opts": self.model._meta,
                "form": form,
                "batch": batch,
                "profile": profile,
                "problems": problems,
                "unused": form.unused_columns(),
                "survey": _survey_for_script(form, targets),
            }
        )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, [MAPPING_TEMPLATE], context)


def _same_name(name: str) -> MappingProfile | None:
    return MappingProfile.objects.filter(name=name).first()


def _initial_guesses(initial: dict, kind: str, surveys) -> None:
    """Date formats and number separators that read the chosen columns' values."""
    by_header = {s.header: s for s in surveys}
    for name, target in kind_targets(kind).items():
        survey = by_header.get(initial.get(f"col__{name}") or "")
        if survey is None:
            continue
        if target.is_date and not survey.has_dates:
            initial.setdefault(f"fmt__{name}", survey.date_format().format)
        if target.is_number:
            decimal, thousands = survey.separators()
            initial.setdefault(f"dec__{name}", decimal)
            initial.setdefault(f"thou__{name}", thousands)


def _survey_for_script(form: MappingStepForm, targets: dict) -> dict:
    """What the page's script needs to update a field when its column changes."""
    columns = {}
    for header, survey in form.surveys.items():
        guess = survey.date_format()
        columns[header] = {
            "first": survey.first,
            "distinct": survey.distinct.most_common(),
            "more": survey.more_distinct,
            "date_format": "" if survey.has_dates else guess.format,
            "ambiguous": guess.ambiguous,
            "separators": survey.separators(),
        }
    return {
        "columns": columns,
        "targets": {
            name: {"type": t.type, "choices": t.choices(), "required": t.required}
            for name, t in targets.items()
        },
        "text": {
            "first": str(_("First values:")),
            "in_file": str(_("In the file")),
            "rows": str(_("Rows")),
            "becomes": str(_("Becomes")),
            "caption": str(_("The file's values, and what each becomes in %(field)s")),
            "more": str(
                _(
                    "The column has more values than are listed here; a value missing from "
                    "the list is reported at preview."
                )
            ),
            "required": str(_("Choose a column or a value for: %(fields)s.")),
            "unused": str(_("Not used:")),
        },
    }


def _document_or_empty(text: str | None) -> dict:
    try:
        document = json.loads(text or "")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
