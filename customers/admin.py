"""Admin for staging: batches (with file imports) and staged customers."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportMixin
from import_export.forms import ConfirmImportForm, ImportForm

from customers import services
from customers.formats import STAGING_FORMATS, FileReadError
from customers.models import (
    StagedBalance,
    StagedCustomer,
    StagedDevice,
    StagedMetric,
    StagingBatch,
)
from customers.resources import STAGING_RESOURCES

ERR_FILE_TOO_BIG = _("The file is %(size)s; files up to %(max)s can be imported.")


def _editable_batches() -> QuerySet[StagingBatch]:
    return StagingBatch.objects.filter(status__in=StagingBatch.EDITABLE_STATUSES)


class BatchImportForm(ImportForm):
    batch = forms.ModelChoiceField(
        queryset=_editable_batches(),
        label=_("Batch"),
        help_text=_("Only draft and validated batches accept files."),
    )
    field_order = ["batch", "resource", "import_file", "format"]

    def __init__(self, formats, resources, **kwargs):
        super().__init__(formats, resources, **kwargs)
        self.fields["batch"].queryset = _editable_batches()
        self.fields["resource"].label = _("Kind of file")
        self.fields["format"].help_text = _("CSV, TSV, XLSX or JSON; guessed from the file name.")

    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        limit = settings.MIGRATION_UPLOAD_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                ERR_FILE_TOO_BIG
                % {"size": filesizeformat(upload.size), "max": filesizeformat(limit)},
                code="too_big",
            )
        return upload


class BatchConfirmImportForm(ConfirmImportForm):
    batch = forms.ModelChoiceField(queryset=_editable_batches(), widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["batch"].queryset = _editable_batches()


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
        staged = ", ".join(f"{n:,} {kind}" for kind, n in result.staged.items())
        messages.success(
            request,
            _("Staged %(staged)s from %(file)s into batch “%(batch)s”.")
            % {"staged": staged, "file": result.file_name, "batch": result.batch.name},
        )
        url = reverse("admin:customers_stagingbatch_change", args=[result.batch.pk])
        return HttpResponseRedirect(url)


class StagingBatchForm(forms.ModelForm):
    class Meta:
        model = StagingBatch
        fields = ["name", "time_zone"]

    def clean_time_zone(self):
        import zoneinfo

        value = self.cleaned_data["time_zone"]
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError(services.ERR_TIME_ZONE % {"value": value}) from None
        return value


@admin.register(StagingBatch)
class StagingBatchAdmin(BatchImportMixin, admin.ModelAdmin):
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
        return format_html('<a href="{}">{}</a>', url, f"{obj.customer_count:,}")

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

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        extra_context["has_import_permission"] = self.has_import_permission(request)
        return super().change_view(request, object_id, form_url, extra_context)


class _StagedChildInline(admin.TabularInline):
    extra = 0
    show_change_link = False

    def _editable(self, obj) -> bool:
        return obj is None or obj.batch.is_editable

    def has_add_permission(self, request, obj=None):
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(obj) and super().has_delete_permission(request, obj)


class BalanceInline(_StagedChildInline):
    model = StagedBalance
    fields = [
        "reward_id",
        "amount",
        "expiration_date",
        "issued_at",
        "brand_id",
        "channel_id",
        "store_id",
        "funded_by",
    ]


class DeviceInline(_StagedChildInline):
    model = StagedDevice
    fields = ["device_token", "platform", "model", "os_version", "expires_at", "created_at"]


class MetricInline(_StagedChildInline):
    model = StagedMetric
    fields = [
        "period",
        "period_from",
        "period_to",
        "tier_id",
        "last_visit",
        "last_session",
        "spend_total",
        "number_of_purchases",
    ]


@admin.register(StagedCustomer)
class StagedCustomerAdmin(admin.ModelAdmin):
    list_display = [
        "legacy_id",
        "name",
        "email",
        "batch",
        "is_valid",
        "is_excluded",
        "outcome",
    ]
    list_filter = ["batch", "is_valid", "is_excluded", "outcome", "status", "gender"]
    search_fields = ["legacy_id", "email", "name"]
    list_select_related = ["batch"]
    show_full_result_count = False
    list_per_page = 50
    inlines = [BalanceInline, DeviceInline, MetricInline]
    fieldsets = [
        (None, {"fields": ["batch", "legacy_id", "name", "email", "gender", "dob", "status"]}),
        (
            _("Registration"),
            {"fields": ["registration_date", "document_type", "document_number", "country"]},
        ),
        (_("Metadata and metrics"), {"fields": ["metadata", "metrics_updated_at"]}),
        (_("Review"), {"fields": ["is_valid", "is_excluded", "exclusion_reason", "resend"]}),
        (
            _("Outcome in Masivo"),
            {"fields": ["outcome", "outcome_at", "outcome_error", "outcome_job_id"]},
        ),
    ]
    readonly_fields = ["is_valid", "outcome", "outcome_at", "outcome_error", "outcome_job_id"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None:
            fields.append("batch")
        return fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "batch":
            kwargs["queryset"] = _editable_batches()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        if obj is not None and not obj.batch.is_editable:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        if obj is not None and not obj.batch.is_editable:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        try:
            services.customer_save(customer=obj)
        except services.BatchStateError as exc:
            raise PermissionDenied(" ".join(exc.messages)) from exc

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.batch_refresh_counts(batch=form.instance.batch)

    def delete_model(self, request, obj):
        services.customer_delete(customer=obj)

    def delete_queryset(self, request, queryset):
        for customer in queryset.select_related("batch"):
            services.customer_delete(customer=customer)
