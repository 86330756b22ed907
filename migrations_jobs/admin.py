"""Job history in the admin: read-only pages, and actions that call the services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from migrations_jobs import services
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob


class ReadOnlyAdminMixin:
    """History is written by the services only."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class JobChunkInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = JobChunk
    fields = (
        "sequence",
        "status",
        "customer_count",
        "attempts",
        "unknown_outcome_retries",
        "last_status_code",
        "not_before",
        "lease_owner",
        "finished_at",
        "last_error",
        "parent",
    )
    readonly_fields = fields
    show_change_link = True
    extra = 0
    ordering = ("sequence",)


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


def _run_action(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[MigrationJob],
    *,
    service,
    done_message: str,
) -> None:
    done = 0
    for job in queryset:
        try:
            service(job=job, user=request.user)
        except (ValidationError, PermissionDenied) as error:
            text = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
            modeladmin.message_user(request, text, messages.ERROR)
        else:
            done += 1
    if done:
        modeladmin.message_user(request, done_message % {"count": done}, messages.SUCCESS)


@admin.register(MigrationJob)
class MigrationJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "batch",
        "started_by",
        "status",
        "sent_of_total",
        "failed_customers",
        "retried_unknown_count",
        "started_at",
        "finished_at",
    )
    list_filter = ("status", "batch")
    list_select_related = ("batch", "started_by")
    search_fields = ("batch__name", "started_by__username")
    date_hierarchy = "created_at"
    inlines = (JobChunkInline,)
    actions = ("cancel_jobs", "retry_failed_chunks", "resume_jobs")
    fieldsets = (
        (None, {"fields": ("batch", "status", "started_by", "cancelled_by")}),
        (
            _("Progress"),
            {
                "fields": (
                    "total_customers",
                    "sent_customers",
                    "failed_customers",
                    "chunk_count",
                    "request_count",
                    "retried_unknown_count",
                )
            },
        ),
        (_("Times"), {"fields": ("created_at", "started_at", "finished_at", "heartbeat_at")}),
        (_("Settings"), {"fields": ("settings_used",), "classes": ("collapse",)}),
    )
    readonly_fields = (
        "batch",
        "status",
        "started_by",
        "cancelled_by",
        "total_customers",
        "sent_customers",
        "failed_customers",
        "chunk_count",
        "request_count",
        "retried_unknown_count",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "settings_used",
    )

    @admin.display(description=_("sent"))
    def sent_of_total(self, job: MigrationJob) -> str:
        return f"{job.sent_customers} / {job.total_customers}"

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.CANCEL_PERMISSION)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.RETRY_PERMISSION)

    @admin.action(permissions=["cancel"], description=_("Cancel selected jobs"))
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[MigrationJob]) -> None:
        _run_action(
            self,
            request,
            queryset,
            service=services.job_cancel,
            done_message=_("%(count)d job(s) cancelled."),
        )

    @admin.action(permissions=["retry"], description=_("Retry failed chunks of selected jobs"))
    def retry_failed_chunks(self, request: HttpRequest, queryset: QuerySet[MigrationJob]) -> None:
        _run_action(
            self,
            request,
            queryset,
            service=services.job_retry_failed,
            done_message=_("Failed chunks of %(count)d job(s) sent again."),
        )

    @admin.action(permissions=["retry"], description=_("Resume selected jobs"))
    def resume_jobs(self, request: HttpRequest, queryset: QuerySet[MigrationJob]) -> None:
        _run_action(
            self,
            request,
            queryset,
            service=services.job_resume,
            done_message=_("%(count)d job(s) resumed."),
        )


@admin.register(JobChunk)
class JobChunkAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
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
