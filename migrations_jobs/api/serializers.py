"""What the API reads and answers: input serializers validate, output serializers present."""

from __future__ import annotations

import json

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.models import CustomerProblem, OnProblems, StagedCustomer, StagingBatch
from customers.services import upload_size_check
from customers.services.mappings import profile_find
from customers.staging import KINDS
from migrations_jobs.api.mapping_schema import MappingDocumentField
from migrations_jobs.api.progress_serializers import JobProgressSerializer
from migrations_jobs.exports import customer_outcome_detail
from migrations_jobs.models import MigrationJob, SendAgain
from migrations_jobs.services import job_needs_resume

ERR_EMPTY_FILE = _("The file is empty.")
ERR_MAPPING_JSON = _("The mapping is not valid JSON: %(error)s.")
ERR_UNKNOWN_MAPPING = _("No mapping profile is named “%(name)s”.")


# --- errors ------------------------------------------------------------------------------------
class RowProblemSerializer(serializers.Serializer):
    row = serializers.IntegerField(allow_null=True, help_text=_("Row number in the file."))
    column = serializers.CharField(allow_blank=True)
    message = serializers.CharField()
    record = serializers.CharField(
        allow_blank=True,
        help_text=_("The row's id: the customer's id, or a child row's customer_id."),
    )
    is_flaggable = serializers.BooleanField(
        help_text=_(
            "A problem validation would flag on the staged customer: with "
            "on_problems=flag the file is staged anyway. Any other problem refuses the file."
        )
    )


class ErrorSerializer(serializers.Serializer):
    """Every error of the API has this shape."""

    error = serializers.CharField(help_text=_("A short code: invalid, not_found, conflict…"))
    details = serializers.CharField(help_text=_("What went wrong, as a sentence."))
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text=_("Messages by input field, when fields were refused."),
    )


class FileErrorSerializer(ErrorSerializer):
    problems = RowProblemSerializer(
        many=True,
        required=False,
        help_text=_("The file's first 100 problems by row and column (problem_count counts all)."),
    )
    problem_count = serializers.IntegerField(
        required=False, help_text=_("How many problems the file has in all.")
    )
    suggested_mapping = MappingDocumentField(
        required=False,
        help_text=_(
            "When the headers are not the kind's own and no mapping was given: a mapping "
            "to complete and send back as `mapping`."
        ),
    )


# --- batches -----------------------------------------------------------------------------------
class BatchSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    last_imported_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    validated_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    approved_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = StagingBatch
        fields = [
            "id",
            "name",
            "time_zone",
            "status",
            "customer_count",
            "balance_count",
            "device_count",
            "metric_count",
            "transaction_count",
            "event_count",
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
        read_only_fields = fields


class BatchCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    time_zone = serializers.CharField(
        max_length=64,
        default="UTC",
        help_text=_("Dates without an offset in this batch's files are read in this time zone."),
    )


class FileUploadSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KINDS)
    file = serializers.FileField(
        help_text=_("CSV, TSV, XLSX or JSON, judged by the file name's extension.")
    )
    dry_run = serializers.BooleanField(
        default=False, help_text=_("Check the file and answer what would be staged; stage nothing.")
    )

    mapping = serializers.CharField(
        required=False,
        help_text=_(
            "How to read a file whose headers are not the kind's own: the name of a mapping "
            "profile, or a mapping document as JSON text (the format is in docs/MAPPING.md). "
            "Without it, such a file is refused with a suggested mapping."
        ),
    )
    on_problems = serializers.ChoiceField(
        choices=OnProblems.choices,
        default=OnProblems.REFUSE,
        help_text=_(
            "What to do with rows that validation would flag (a bad email, a missing required "
            "field, an email repeated in the file, a customer another batch already sent): "
            "`refuse` stages nothing and lists every problem; `flag` stages the file and "
            "leaves those rows for validation to flag, to be fixed or excluded. Rows that "
            "cannot be stored (unreadable cells, an unknown customer, a repeated or already "
            "staged id) always refuse the file."
        ),
    )

    def validate_file(self, upload):
        upload_size_check(size=upload.size)
        return upload

    def validate_mapping(self, value: str):
        if value.lstrip().startswith("{"):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise serializers.ValidationError(ERR_MAPPING_JSON % {"error": exc}) from exc
        profile = profile_find(reference=value)
        if profile is None:
            raise serializers.ValidationError(ERR_UNKNOWN_MAPPING % {"name": value})
        return profile


class StagedFileSerializer(serializers.Serializer):
    batch = BatchSerializer()
    kind = serializers.CharField()
    file_name = serializers.CharField()
    dry_run = serializers.BooleanField()
    mapping = MappingDocumentField(
        allow_null=True, help_text=_("The mapping the file was read with (null: none needed).")
    )
    staged = serializers.DictField(
        child=serializers.IntegerField(),
        help_text=_("Rows staged (or, in a dry run, that would be staged) by kind."),
    )
    problems = RowProblemSerializer(
        many=True,
        help_text=_(
            "With on_problems=flag: the first 100 problems validation will flag on these rows."
        ),
    )
    problem_count = serializers.IntegerField(help_text=_("How many such problems in all."))


class ValidationSummarySerializer(serializers.Serializer):
    valid = serializers.IntegerField()
    invalid = serializers.IntegerField()
    excluded = serializers.IntegerField()
    problem_count = serializers.IntegerField()
    is_validated = serializers.BooleanField()
    batch = BatchSerializer()


class ProblemSerializer(serializers.ModelSerializer):
    message = serializers.CharField(
        source="get_message_display",
        read_only=True,
        help_text=_("What is wrong, in the language the request asks for (Accept-Language)."),
    )

    class Meta:
        model = CustomerProblem
        fields = ["id", "legacy_id", "customer", "field", "code", "message", "other_batch"]
        read_only_fields = fields


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = StagedCustomer
        fields = [
            "id",
            "legacy_id",
            "name",
            "email",
            "is_valid",
            "is_excluded",
            "exclusion_reason",
            "resend",
            "outcome",
            "outcome_at",
            "outcome_error",
            "outcome_job_id",
            "outcome_other_job_id",
            "outcome_maybe_twice",
        ]
        read_only_fields = fields


class CustomerSelectionSerializer(serializers.Serializer):
    legacy_ids = serializers.ListField(
        child=serializers.CharField(max_length=255),
        min_length=1,
        max_length=10_000,
        help_text=_("Legacy ids of customers staged in this batch."),
    )


class ExclusionSerializer(CustomerSelectionSerializer):
    excluded = serializers.BooleanField(
        default=True, help_text=_("True excludes the customers; false includes them again.")
    )
    reason = serializers.CharField(allow_blank=True, default="", max_length=255)


class SendAgainSerializer(CustomerSelectionSerializer):
    reason = serializers.CharField(
        max_length=1000,
        help_text=_("Why these customers must be sent again; recorded with your name."),
    )


class SendAgainRecordSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    job = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = SendAgain
        fields = ["id", "batch", "job", "requested_by", "requested_at", "reason", "customer_count"]
        read_only_fields = fields


class BatchOverlapSerializer(serializers.Serializer):
    batch = serializers.IntegerField(source="batch_id", help_text=_("The other batch's id."))
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=StagingBatch.Status.choices)
    customers = serializers.IntegerField(help_text=_("Customers the two batches share."))


OVERLAPS_HELP = _(
    "Other batches, approved or submitted, that hold customers this batch sends. The console "
    "sends a customer once: whichever job reaches it first sends it, the other skips it."
)


class BatchApprovedSerializer(BatchSerializer):
    overlaps = BatchOverlapSerializer(many=True, read_only=True, help_text=OVERLAPS_HELP)

    class Meta(BatchSerializer.Meta):
        fields = [*BatchSerializer.Meta.fields, "overlaps"]
        read_only_fields = fields


class CustomersChangedSerializer(serializers.Serializer):
    updated = serializers.IntegerField(help_text=_("How many customers changed."))
    batch = BatchSerializer()


# --- jobs --------------------------------------------------------------------------------------
class JobSerializer(serializers.ModelSerializer):
    """A job; ``progress`` (chunks by status) is given for one job, and null in lists."""

    batch_name = serializers.CharField(source="batch.name", read_only=True)
    started_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    cancelled_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    progress_percent = serializers.IntegerField(read_only=True)
    is_terminal = serializers.BooleanField(read_only=True)
    progress = JobProgressSerializer(read_only=True, allow_null=True)
    needs_resume = serializers.SerializerMethodField(
        help_text=_(
            "True when the job has work that no live worker holds (a lease ran out, or no "
            "worker shows a sign of life): resuming it helps."
        )
    )

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_needs_resume(self, job: MigrationJob) -> bool:
        return job_needs_resume(job=job)

    class Meta:
        model = MigrationJob
        fields = [
            "id",
            "batch",
            "batch_name",
            "status",
            "is_terminal",
            "progress_percent",
            "total_customers",
            "sent_customers",
            "failed_customers",
            "skipped_customers",
            "total_transactions",
            "sent_transactions",
            "failed_transactions",
            "skipped_transactions",
            "total_events",
            "sent_events",
            "failed_events",
            "skipped_events",
            "chunk_count",
            "request_count",
            "retried_unknown_count",
            "started_by",
            "cancelled_by",
            "created_at",
            "started_at",
            "finished_at",
            "needs_resume",
            "progress",
        ]
        read_only_fields = fields


class JobStartedSerializer(JobSerializer):
    overlaps = BatchOverlapSerializer(many=True, read_only=True, help_text=OVERLAPS_HELP)

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "overlaps"]
        read_only_fields = fields


class FailedCustomerSerializer(serializers.ModelSerializer):
    failed_at = serializers.DateTimeField(source="outcome_at", read_only=True)
    chunk = serializers.IntegerField(source="outcome_chunk_id", read_only=True)
    error = serializers.CharField(
        source="outcome_error",
        read_only=True,
        help_text=_("The error as recorded: Masivo's status and answer."),
    )
    explanation = serializers.SerializerMethodField(
        help_text=_("In words: what Masivo refused, and what to do (the CSV's detail).")
    )

    @extend_schema_field(OpenApiTypes.STR)
    def get_explanation(self, customer: StagedCustomer) -> str:
        # The view gives the job's failed chunks in the context (``failures``).
        return customer_outcome_detail(customer, self.context.get("failures"))

    class Meta:
        model = StagedCustomer
        fields = ["id", "legacy_id", "name", "email", "failed_at", "chunk", "error", "explanation"]
        read_only_fields = fields
