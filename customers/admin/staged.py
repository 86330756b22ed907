"""Admin for staged customers (with their balances, devices and metrics) and problems."""

from __future__ import annotations

from itertools import groupby

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from console.errors import error_text
from console.ids import id_parse
from customers.admin.mixins import IdLookupsMixin, LabelledDateTimesMixin
from customers.contract.bounds import (
    ERR_METADATA_DEPTH,
    METADATA_MAX_DEPTH,
    metadata_check,
    metadata_text_check,
)
from customers.contract.messages import ContractError
from customers.models import (
    StagedBalance,
    StagedCustomer,
    StagedDevice,
    StagedMetric,
    StagingBatch,
)
from customers.selectors import editable_batches
from customers.services import (
    BatchStateError,
    batch_refresh_counts,
    customer_delete,
    customer_save,
    customers_set_excluded,
)


class _StagedChildInline(LabelledDateTimesMixin, admin.TabularInline):
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


def _is_id(value: str | None) -> bool:
    """A primary key's text: digits that fit the database's integers."""
    return id_parse(value) is not None


class AlsoInBatchFilter(admin.SimpleListFilter):
    """Customers whose legacy id is also staged in the chosen batch (an overlap between
    batches: see ``selectors.batch_overlaps``)."""

    title = _("other batch sharing them")
    parameter_name = "also_in"

    def lookups(self, request, model_admin):
        # Offered from the links that name a batch; listing every batch would be a list of
        # every batch of the console.
        value = self.value()
        if not _is_id(value):
            return []
        batch = StagingBatch.objects.filter(pk=int(value)).only("name").first()
        return [(value, batch.name)] if batch else []

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not _is_id(value):
            return queryset.none()
        others = StagedCustomer.objects.filter(batch_id=int(value)).values("legacy_id")
        return queryset.filter(legacy_id__in=others).exclude(batch_id=int(value))


class JobFilter(admin.SimpleListFilter):
    """Customers whose outcome a job decided (the job page's links narrow the list so)."""

    title = _("job")
    parameter_name = "outcome_job_id"

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, f"#{value}")] if _is_id(value) else []

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(outcome_job_id=int(value)) if _is_id(value) else queryset.none()


class PossiblyTwiceFilter(admin.BooleanFieldListFilter):
    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = _("possible duplicate in Masivo")


class MetadataFormField(forms.JSONField):
    """The metadata box: JSON within the bounds every door applies (a clear message, not a
    server error, for an object nested too deep to parse)."""

    def to_python(self, value):
        try:
            if isinstance(value, str):
                metadata_text_check(value)
            data = super().to_python(value)
            return metadata_check(data) if isinstance(data, dict) else data
        except RecursionError:
            raise ValidationError(ERR_METADATA_DEPTH % {"max": METADATA_MAX_DEPTH}) from None
        except ContractError as exc:
            raise ValidationError(exc.message) from None

    def bound_data(self, data, initial):
        """What was typed, shown again as it was typed when it is too deep to parse."""
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)


@admin.register(StagedCustomer)
class StagedCustomerAdmin(IdLookupsMixin, LabelledDateTimesMixin, admin.ModelAdmin):
    formfield_overrides = {models.JSONField: {"form_class": MetadataFormField}}
    list_display = [
        "legacy_id",
        "name",
        "email",
        "batch",
        "is_valid",
        "excluded",
        "outcome",
    ]
    list_filter = [
        "batch",
        AlsoInBatchFilter,
        "is_valid",
        "is_excluded",
        "outcome",
        JobFilter,
        ("outcome_maybe_twice", PossiblyTwiceFilter),
        "status",
        "gender",
    ]
    search_fields = ["legacy_id", "email", "name"]
    list_select_related = ["batch"]
    show_full_result_count = False
    list_per_page = 50
    inlines = [BalanceInline, DeviceInline, MetricInline]
    actions = ["exclude_customers", "include_customers"]
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
            {
                "fields": [
                    "outcome",
                    "outcome_at",
                    "outcome_error",
                    "outcome_job_id",
                    "outcome_other_job_id",
                    "outcome_maybe_twice",
                ]
            },
        ),
    ]
    readonly_fields = [
        "is_valid",
        "resend",
        "outcome",
        "outcome_at",
        "outcome_error",
        "outcome_job_id",
        "outcome_other_job_id",
        "outcome_maybe_twice",
    ]

    @admin.display(description=_("excluded"), ordering="is_excluded")
    def excluded(self, obj: StagedCustomer) -> str:
        """A word, not a tick: a green tick reads as "fine", not as "left out"."""
        if not obj.is_excluded:
            return ""
        return format_html(
            '<span class="console-excluded" title="{}">{}</span>',
            obj.exclusion_reason,
            _("Excluded"),
        )

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None:
            fields.append("batch")
        return fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "batch":
            kwargs["queryset"] = editable_batches()
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
            customer_save(customer=obj, user=request.user)
        except BatchStateError as exc:
            raise PermissionDenied(error_text(exc)) from exc

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        batch_refresh_counts(batch=form.instance.batch)

    def delete_model(self, request, obj):
        customer_delete(customer=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for customer in queryset.select_related("batch"):
            customer_delete(customer=customer, user=request.user)

    def _per_batch(self, request, queryset, change) -> None:
        """Apply ``change(batch, ids)`` to the selection, batch by batch."""
        rows = queryset.select_related("batch").order_by("batch_id", "pk")
        done = 0
        for batch, customers in groupby(rows, key=lambda c: c.batch):
            try:
                done += change(batch, [c.pk for c in customers])
            except (PermissionDenied, ValidationError) as exc:
                text = error_text(exc)
                self.message_user(request, text, messages.ERROR)
        if done:
            self.message_user(
                request,
                _("%(n)s customers changed. Validate their batch again.") % {"n": done},
                messages.SUCCESS,
            )

    @admin.action(
        description=_("Exclude selected customers from the migration"), permissions=["change"]
    )
    def exclude_customers(self, request, queryset):
        self._per_batch(
            request,
            queryset,
            lambda batch, ids: customers_set_excluded(
                batch=batch,
                customer_ids=ids,
                excluded=True,
                reason=str(_("Excluded by %(user)s") % {"user": request.user.get_username()}),
                user=request.user,
            ),
        )

    @admin.action(description=_("Include selected customers again"), permissions=["change"])
    def include_customers(self, request, queryset):
        self._per_batch(
            request,
            queryset,
            lambda batch, ids: customers_set_excluded(
                batch=batch, customer_ids=ids, excluded=False, user=request.user
            ),
        )
