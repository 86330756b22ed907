"""Chunks, their attempts and the send-again decisions in the admin: read-only records."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from customers.admin.mixins import IdLookupsMixin, ReadOnlyAdminMixin
from migrations_jobs.models import ChunkAttempt, JobChunk, SendAgain


class ChunkAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ChunkAttempt
    fields = (
        "number",
        "started_at",
        "duration_s",
        "status_code",
        "outcome",
        "error_class",
        "retry_after_s",
        "ratelimit",
        "token_refreshed",
        "worker",
        "response_excerpt",
    )
    readonly_fields = fields
    extra = 0


@admin.register(JobChunk)
class JobChunkAdmin(IdLookupsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "job",
        "status",
        "customer_count",
        "attempts",
        "unknown_outcome_retries",
        "last_status_code",
        "finished_at",
    )
    list_filter = ("status",)
    list_select_related = ("job",)
    search_fields = ("job__batch__name",)
    inlines = (ChunkAttemptInline,)
    readonly_fields = (
        "job",
        "sequence",
        "parent",
        "status",
        "customer_count",
        "attempts",
        "unknown_outcome_retries",
        "not_before",
        "lease_owner",
        "lease_expires_at",
        "request_started_at",
        "last_status_code",
        "last_outcome",
        "last_error",
        "created_at",
        "finished_at",
        "customer_ids",
    )
    fields = readonly_fields

    def has_module_permission(self, request: HttpRequest) -> bool:
        # Reached from a job's page; not listed on its own in the index.
        return False


@admin.register(SendAgain)
class SendAgainAdmin(IdLookupsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who decided to send which customers again, when and why: a record, never changed."""

    list_display = ("requested_at", "batch", "job", "requested_by", "customer_count", "reason")
    list_filter = ("batch",)
    list_select_related = ("batch", "job", "requested_by")
    search_fields = ("reason", "batch__name", "requested_by__username")
    date_hierarchy = "requested_at"
    exclude = ("customer_ids",)
