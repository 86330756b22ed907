"""The sandbox in the admin: its configuration is editable at run time; the scripted
answer queue takes new entries; what arrived is read-only."""

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from customers.admin.mixins import IdLookupsMixin, ReadOnlyAdminMixin
from migrations_jobs.sandbox.models import (
    SandboxConfig,
    SandboxCustomer,
    SandboxHistoryEntry,
    SandboxRequest,
    SandboxScriptedAnswer,
    SandboxTokenRequest,
)


@admin.register(SandboxConfig)
class SandboxConfigAdmin(IdLookupsMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "token_lifetime_s",
        "rate_interval_s",
        "rate_clock",
        "hourly_cap",
        "fail_500_rate",
        "fail_429_rate",
        "slow_rate",
        "slow_s",
        "jitter_s",
        "updated_at",
    )
    readonly_fields = ("updated_at",)
    fieldsets = (
        (_("Tokens"), {"fields": ("token_lifetime_s",)}),
        (
            _("Rate limit"),
            {"fields": ("rate_interval_s", "rate_clock", "hourly_cap", "retry_after_s")},
        ),
        (
            _("Injected faults"),
            {
                "fields": (
                    "fail_500_rate",
                    "fail_429_rate",
                    "slow_rate",
                    "slow_s",
                    "jitter_s",
                    "reject_ids",
                )
            },
        ),
        (_("History"), {"fields": ("refuse_history_first",)}),
        (None, {"fields": ("updated_at",)}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not SandboxConfig.objects.exists()


@admin.register(SandboxScriptedAnswer)
class SandboxScriptedAnswerAdmin(IdLookupsMixin, admin.ModelAdmin):
    list_display = ("pk", "status_code", "retry_after_s", "delay_s", "created_at", "consumed_at")
    list_filter = ("status_code", ("consumed_at", admin.EmptyFieldListFilter))
    fields = ("status_code", "retry_after_s", "delay_s", "created_at", "consumed_at")
    readonly_fields = ("created_at", "consumed_at")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(SandboxRequest)
class SandboxRequestAdmin(IdLookupsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "pk",
        "received_at",
        "kind",
        "status_code",
        "reason",
        "customer_count",
        "item_count",
        "new_count",
        "duplicate_count",
        "duration_s",
        "jitter_s",
        "is_accepted",
    )
    list_filter = ("kind", "status_code", "reason", "is_accepted")
    date_hierarchy = "received_at"


@admin.register(SandboxCustomer)
class SandboxCustomerAdmin(IdLookupsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("legacy_id", "email", "times_received", "first_received_at", "request")
    list_filter = ("times_received",)
    search_fields = ("legacy_id", "email")
    list_select_related = ("request",)
    raw_id_fields = ("request", "last_request")


@admin.register(SandboxHistoryEntry)
class SandboxHistoryEntryAdmin(IdLookupsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("legacy_id", "kind", "item_count", "has_customer", "received_at", "request")
    list_filter = ("kind", "has_customer")
    search_fields = ("legacy_id",)
    list_select_related = ("request",)
    raw_id_fields = ("request",)


@admin.register(SandboxTokenRequest)
class SandboxTokenRequestAdmin(IdLookupsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("pk", "requested_at", "is_granted")
    list_filter = ("is_granted",)
