"""Admin for staging batches: their page and counts, composed from the page's concerns:
steps (``steps``), file import (``imports``) and its mapping step (``mapping_step``),
files in the background (``uploads``) and the dry run (``dry_run``)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from customers.admin.dry_run import BatchDryRunMixin
from customers.admin.error_files import BatchErrorFileMixin
from customers.admin.imports import BatchImportMixin
from customers.admin.mapping_step import BatchMappingStepMixin
from customers.admin.mixins import IdLookupsMixin
from customers.admin.reconciliation import BatchReconciliationMixin, reconciliation_context
from customers.admin.steps import BatchStepsMixin
from customers.admin.uploads import BatchUploadsMixin
from customers.admin.workflow import workflow_context
from customers.models import StagingBatch
from customers.services import (
    batch_create,
    batch_name_check,
    batch_time_zone_check,
    user_may_see_customers,
)
from customers.staging import grouped

MSG_CREATED = _("Batch “%(batch)s” is created. Import its files next, customers first.")


class StagingBatchForm(forms.ModelForm):
    class Meta:
        model = StagingBatch
        fields = ["name", "time_zone"]

    def clean_name(self):
        value = self.cleaned_data["name"]
        batch_name_check(name=value)
        return value

    def clean_time_zone(self):
        value = self.cleaned_data["time_zone"]
        batch_time_zone_check(time_zone=value)
        return value


@admin.register(StagingBatch)
class StagingBatchAdmin(
    BatchStepsMixin,
    BatchUploadsMixin,
    BatchDryRunMixin,
    BatchReconciliationMixin,
    BatchMappingStepMixin,
    BatchErrorFileMixin,
    BatchImportMixin,
    IdLookupsMixin,
    admin.ModelAdmin,
):
    form = StagingBatchForm
    list_display = [
        "name",
        "status",
        "customers_link",
        "balance_count",
        "device_count",
        "metric_count",
        "transaction_count",
        "event_count",
        "created_by",
        "created",
    ]
    list_filter = ["status"]
    search_fields = ["name"]
    list_select_related = ["created_by"]
    date_hierarchy = "created_at"
    fieldsets = [
        (None, {"fields": ["name", "time_zone", "status"]}),
        (
            _("Staged rows"),
            {
                "fields": [
                    "customers_link",
                    "balance_count",
                    "device_count",
                    "metric_count",
                    "transaction_count",
                    "event_count",
                ]
            },
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
        "transaction_count",
        "event_count",
        "valid_count",
        "invalid_count",
        "excluded_count",
        "customers_count",
        "created_by",
        "created_at",
        "last_imported_by",
        "last_imported_at",
        "validated_by",
        "validated_at",
        "approved_by",
        "approved_at",
    ]

    def get_urls(self):
        return [
            *self.step_urls(),
            *self.upload_urls(),
            *self.dry_run_urls(),
            *self.reconciliation_urls(),
            *self.mapping_urls(),
            *self.error_file_urls(),
            *super().get_urls(),
        ]

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["name", "time_zone"]})]
        return [
            (name, {**options, "fields": self._customer_columns(request, options["fields"])})
            for name, options in super().get_fieldsets(request, obj)
        ]

    def get_list_display(self, request):
        return self._customer_columns(request, super().get_list_display(request))

    @staticmethod
    def _customer_columns(request, names) -> list:
        """``names`` with the count of customers as a link to them only for those who may
        see customers (``user_may_see_customers``); others see the number."""
        if user_may_see_customers(user=request.user):
            return list(names)
        return ["customers_count" if name == "customers_link" else name for name in names]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.is_editable:
            return [*self.readonly_fields, "name", "time_zone"]
        return self.readonly_fields

    @admin.display(description=_("created at"), ordering="created_at")
    def created(self, obj: StagingBatch) -> str:
        # The short form, so that the list fits the screen in every language.
        return date_format(timezone.localtime(obj.created_at), "SHORT_DATETIME_FORMAT")

    @admin.display(description=_("customers"), ordering="customer_count")
    def customers_link(self, obj: StagingBatch) -> str:
        url = reverse("admin:customers_stagedcustomer_changelist") + f"?batch__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, grouped(obj.customer_count))

    @admin.display(description=_("customers"), ordering="customer_count")
    def customers_count(self, obj: StagingBatch) -> str:
        return grouped(obj.customer_count)

    def has_change_permission(self, request, obj=None):
        """An approved or submitted batch is read-only: shown without Save buttons (its
        steps, reopen and submit, have their own pages)."""
        if obj is not None and not obj.is_editable:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not obj.is_editable:
            return False
        return super().has_delete_permission(request, obj)

    def response_add(self, request, obj, post_url_continue=None):
        """A new batch opens on its own page, where its files are imported, not the list."""
        if "_addanother" in request.POST or IS_POPUP_VAR in request.POST:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(request, MSG_CREATED % {"batch": obj.name}, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:customers_stagingbatch_change", args=[obj.pk]))

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created = batch_create(name=obj.name, time_zone=obj.time_zone, user=request.user)
        obj.pk = created.pk
        obj.refresh_from_db()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        batch = self.get_object(request, object_id)
        extra_context["has_import_permission"] = self.has_import_permission(request)
        if batch is not None:
            steps = self.allowed_steps(request, batch)
            extra_context["can_dry_run"] = batch.can_dry_run and user_may_see_customers(
                user=request.user
            )
            extra_context["uploads"] = self.upload_rows(batch)
            extra_context.update(reconciliation_context(request, batch))
            extra_context.update(workflow_context(request, batch, steps))
        return super().change_view(request, object_id, form_url, extra_context)
