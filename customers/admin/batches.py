"""Admin for staging batches: their page, their counts and the steps of their life."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import slugify
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from console.admin import Step, StepsMixin
from console.errors import error_text
from customers import services, uploads
from customers.admin.imports import BatchImportMixin
from customers.models import StagingBatch, StagingUpload
from customers.selectors import batch_overlaps
from customers.staging import grouped

Status = StagingBatch.Status


BATCH_STEPS = [
    Step(
        "validate",
        _("Validate"),
        "customers.change_stagingbatch",
        (Status.DRAFT, Status.VALIDATED),
        _("Validate batch “%(batch)s”?"),
        _("Yes, validate the batch"),
    ),
    Step(
        "approve",
        _("Approve"),
        "customers.approve_stagingbatch",
        (Status.VALIDATED,),
        _("Approve batch “%(batch)s”?"),
        _("Yes, approve the batch"),
    ),
    Step(
        "reopen",
        _("Reopen"),
        "customers.change_stagingbatch",
        (Status.VALIDATED, Status.APPROVED),
        _("Reopen batch “%(batch)s”?"),
        _("Yes, reopen the batch"),
    ),
]


class StagingBatchForm(forms.ModelForm):
    class Meta:
        model = StagingBatch
        fields = ["name", "time_zone"]

    def clean_time_zone(self):

        value = self.cleaned_data["time_zone"]
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError(services.ERR_TIME_ZONE % {"value": value}) from None
        return value


def overlap_lines(batch: StagingBatch) -> list[str]:
    """What a confirmation page says of the other batches, approved or submitted, that
    hold customers this batch would send: how it works once, then how many, which batch,
    and a link to them, one line per batch."""
    overlaps = batch_overlaps(batch=batch)
    if not overlaps:
        return []
    lines = [
        gettext(
            "Some customers of this batch are also in other batches that are approved or "
            "submitted. The console sends a customer once: whichever job reaches it first "
            "sends it, and the other job skips it. Nothing is refused."
        )
    ]
    for overlap in overlaps:
        url = (
            reverse("admin:customers_stagedcustomer_changelist")
            + "?"
            + urlencode({"batch__id__exact": batch.pk, "also_in": overlap.batch_id})
        )
        values = {
            "n": grouped(overlap.customers),
            "other": overlap.name,
            "status": Status(overlap.status).label.lower(),
        }
        text = ngettext(
            "%(n)s customer is also in batch “%(other)s” (%(status)s).",
            "%(n)s customers are also in batch “%(other)s” (%(status)s).",
            overlap.customers,
        )
        lines.append(
            format_html(
                '<span class="console-overlap">{}</span> <a href="{}">{}</a>',
                text % values,
                url,
                gettext("See the customers also in “%(other)s”") % values,
            )
        )
    return lines


@admin.register(StagingBatch)
class StagingBatchAdmin(StepsMixin, BatchImportMixin, admin.ModelAdmin):
    form = StagingBatchForm
    list_display = [
        "name",
        "status",
        "customers_link",
        "balance_count",
        "device_count",
        "metric_count",
        "created_by",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["name"]
    list_select_related = ["created_by"]
    date_hierarchy = "created_at"
    fieldsets = [
        (None, {"fields": ["name", "time_zone", "status"]}),
        (
            _("Staged rows"),
            {"fields": ["customers_link", "balance_count", "device_count", "metric_count"]},
        ),
        (_("Validation"), {"fields": ["valid_count", "invalid_count", "excluded_count"]}),
        (
            _("History"),
            {
                "fields": [
                    ("created_by", "created_at"),
                    ("last_imported_by", "last_imported_at"),
                    ("validated_by", "validated_at"),
                    ("approved_by", "approved_at"),
                ]
            },
        ),
    ]
    readonly_fields = [
        "status",
        "customers_link",
        "balance_count",
        "device_count",
        "metric_count",
        "valid_count",
        "invalid_count",
        "excluded_count",
        "created_by",
        "created_at",
        "last_imported_by",
        "last_imported_at",
        "validated_by",
        "validated_at",
        "approved_by",
        "approved_at",
    ]

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["name", "time_zone"]})]
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.is_editable:
            return [*self.readonly_fields, "name", "time_zone"]
        return self.readonly_fields

    @admin.display(description=_("customers"), ordering="customer_count")
    def customers_link(self, obj: StagingBatch) -> str:
        url = reverse("admin:customers_stagedcustomer_changelist") + f"?batch__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, grouped(obj.customer_count))

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not obj.is_editable:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created = services.batch_create(name=obj.name, time_zone=obj.time_zone, user=request.user)
        obj.pk = created.pk
        obj.refresh_from_db()

    # --- steps ---------------------------------------------------------------------------

    steps = BATCH_STEPS

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            *self.step_urls(),
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
            path(
                "<int:object_id>/dry-run/",
                self.admin_site.admin_view(self.dry_run_view),
                name="{}_{}_dry_run".format(*info),
            ),
            *super().get_urls(),
        ]

    def step_values(self, batch: StagingBatch) -> dict:
        return {"object": gettext("batch “%(batch)s”") % {"batch": batch.name}, "batch": batch.name}

    def step_is_allowed(self, request: HttpRequest, batch: StagingBatch, step: Step) -> bool:
        return step.name != "approve" or services.batch_may_approve(batch=batch, user=request.user)

    def describe_validate(self, batch: StagingBatch) -> list[str]:
        return [
            _(
                "Every one of the %(n)s staged customers will be checked against Masivo's "
                "contract, and against each other (duplicate emails) and earlier batches "
                "(customers already sent)."
            )
            % {"n": grouped(batch.customer_count)},
            _(
                "Problems are listed by customer and field. The batch becomes validated only "
                "when no invalid customer is left unexcluded."
            ),
        ]

    def run_validate(self, request, batch):
        from customers.validation import batch_validate

        summary = batch_validate(batch=batch, user=request.user)
        batch.refresh_from_db()
        text = _("Validation: %(valid)s valid, %(invalid)s invalid, %(excluded)s excluded.") % {
            "valid": grouped(summary.valid),
            "invalid": grouped(summary.invalid),
            "excluded": grouped(summary.excluded),
        }
        if batch.status == Status.VALIDATED:
            return messages.SUCCESS, text + " " + str(_("The batch is validated."))
        return messages.WARNING, text + " " + str(
            _("Fix or exclude the invalid customers, then validate again.")
        )

    def describe_approve(self, batch: StagingBatch) -> list[str]:
        return [
            _(
                "%(valid)s customers will be frozen for submission (%(excluded)s excluded). "
                "No file can be imported and no row edited until the batch is reopened."
            )
            % {"valid": grouped(batch.valid_count), "excluded": grouped(batch.excluded_count)},
            _("A fingerprint of the exact request bodies is recorded with your approval."),
            *overlap_lines(batch),
        ]

    def run_approve(self, request, batch):
        services.batch_approve(batch=batch, user=request.user)
        return messages.SUCCESS, _("Batch “%(batch)s” is approved.") % {"batch": batch.name}

    def describe_reopen(self, batch: StagingBatch) -> list[str]:
        return [
            _(
                "The batch goes back to draft: its validation and approval are voided, and "
                "it must be validated and approved again before it can be submitted."
            )
        ]

    def run_reopen(self, request, batch):
        services.batch_reopen(batch=batch, user=request.user)
        return messages.SUCCESS, _("Batch “%(batch)s” is a draft again.") % {"batch": batch.name}

    def dry_run_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The exact request bodies a job would send, one per line, streamed."""
        from customers.payload import batch_dry_run_lines

        batch = get_object_or_404(StagingBatch, pk=object_id)
        if not self.has_view_permission(request, batch):
            raise PermissionDenied
        if batch.status not in StagingBatch.DRY_RUN_STATUSES:
            messages.error(request, _("Validate the batch before downloading its dry run."))
            return HttpResponseRedirect(
                reverse("admin:customers_stagingbatch_change", args=[batch.pk])
            )
        response = StreamingHttpResponse(
            batch_dry_run_lines(batch=batch), content_type="application/x-ndjson"
        )
        filename = f"{slugify(batch.name) or batch.pk}-dry-run.jsonl"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    # --- files checked and staged in the background ----------------------------------------

    def _upload_rows(self, batch: StagingBatch) -> list[dict]:
        rows = []
        for upload in batch.uploads.all()[:10]:
            done = uploads.upload_progress(upload=upload)
            total = max(upload.row_estimate, done, 1)
            rows.append(
                {
                    "id": upload.pk,
                    "file_name": upload.file_name,
                    "kind": upload.kind,
                    "status": upload.status,
                    "status_label": str(upload.get_status_display()),
                    "rows": done,
                    "total": total,
                    "percent": 100 if not upload.is_active else min(99, round(100 * done / total)),
                    "problem_count": len(upload.problems),
                    "staged": upload.staged,
                    "is_active": upload.is_active,
                    "url": reverse(
                        "admin:customers_stagingbatch_upload", args=[batch.pk, upload.pk]
                    ),
                }
            )
        return rows

    def uploads_progress_view(self, request: HttpRequest, object_id: int) -> JsonResponse:
        batch = get_object_or_404(StagingBatch, pk=object_id)
        if not self.has_view_permission(request, batch):
            raise PermissionDenied
        rows = self._upload_rows(batch)
        return JsonResponse({"uploads": rows, "active": any(r["is_active"] for r in rows)})

    def upload_view(self, request: HttpRequest, object_id: int, upload_id: int) -> HttpResponse:
        """A background file: its problems, and the confirmation that stages it."""
        batch = get_object_or_404(StagingBatch, pk=object_id)
        upload = get_object_or_404(StagingUpload, pk=upload_id, batch=batch)
        if not self.has_view_permission(request, batch):
            raise PermissionDenied
        change_url = reverse("admin:customers_stagingbatch_change", args=[batch.pk])
        if request.method == "POST":
            if not self.has_import_permission(request):
                raise PermissionDenied
            try:
                uploads.upload_confirm(upload=upload, user=request.user)
            except ValidationError as exc:
                messages.error(request, error_text(exc))
            else:
                messages.info(
                    request,
                    _("A worker is staging %(file)s; its progress shows below.")
                    % {"file": upload.file_name},
                )
            return HttpResponseRedirect(change_url + "#uploads")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": batch,
            "upload": upload,
            "change_url": change_url,
            "can_confirm": upload.status == StagingUpload.Status.READY
            and self.has_import_permission(request),
            "title": _("File %(file)s") % {"file": upload.file_name},
        }
        return TemplateResponse(request, "admin/customers/stagingbatch/upload.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        batch = self.get_object(request, object_id)
        extra_context["has_import_permission"] = self.has_import_permission(request)
        if batch is not None:
            extra_context["batch_steps"] = self.allowed_steps(request, batch)
            extra_context["can_dry_run"] = batch.status in StagingBatch.DRY_RUN_STATUSES
            extra_context["problem_count"] = batch.problems.count()
            extra_context["uploads"] = self._upload_rows(batch)
        return super().change_view(request, object_id, form_url, extra_context)
