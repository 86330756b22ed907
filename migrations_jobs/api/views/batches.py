"""Batches: create, stage files, validate, review problems and customers, approve,
reopen, dry run."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as InputError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from customers import services as batch_services
from customers.models import StagingBatch
from customers.payload.history import dry_run_label, dry_run_lines
from customers.selectors import batch_overlaps
from customers.services import batch_validate, customers_set_excluded
from customers.staging import batch_stage_file
from migrations_jobs import services
from migrations_jobs.api import filters, selectors
from migrations_jobs.api import serializers as s
from migrations_jobs.api.exceptions import error_body
from migrations_jobs.api.permissions import (
    APPROVE,
    CHANGE_BATCH,
    IMPORT,
    VIEW_BATCH,
    VIEW_CUSTOMER,
)
from migrations_jobs.api.views.base import (
    ConsoleListView,
    ConsoleView,
    JSONLinesRenderer,
    error_responses,
    query_params,
    request_data,
)

Status = StagingBatch.Status

ERR_BATCH_NOT_FOUND = _("There is no batch with id %(id)s.")
ERR_FILE_REFUSED = _("%(file)s has %(count)d problem(s); nothing was staged.")
ERR_NOT_STAGED_HERE = _("Not staged in batch “%(batch)s”: %(ids)s.")


def batch_or_404(batch_id: int) -> StagingBatch:
    batch = selectors.batch_list().filter(pk=batch_id).first()
    if batch is None:
        raise NotFound(ERR_BATCH_NOT_FOUND % {"id": batch_id})
    return batch


def _batch_answer(batch: StagingBatch, code: int = status.HTTP_200_OK) -> Response:
    batch = batch_or_404(batch.pk)
    return Response(s.BatchSerializer(batch).data, status=code)


@extend_schema(tags=["batches"])
class BatchListView(ConsoleListView):
    required_permissions = {"GET": (VIEW_BATCH,), "POST": (IMPORT,)}
    serializer_class = s.BatchSerializer

    def get_queryset(self):
        return selectors.batch_list(**query_params(filters.BatchFilters, self.request))

    @extend_schema(
        summary=_("List batches"),
        parameters=[filters.BatchFilters],
        responses={200: s.BatchSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(
        summary=_("Create a batch"),
        request=s.BatchCreateSerializer,
        responses={201: s.BatchSerializer, **error_responses(400)},
    )
    def post(self, request):
        data = request_data(s.BatchCreateSerializer, request)
        try:
            batch = batch_services.batch_create(
                name=data["name"], time_zone=data["time_zone"], user=request.user
            )
        except ValidationError as exc:
            # A name that reads as an id, a time zone that is none: the field's own error.
            if getattr(exc, "code", None) in ("name", "time_zone"):
                raise InputError({exc.code: exc.messages}) from exc
            raise
        return _batch_answer(batch, status.HTTP_201_CREATED)


@extend_schema(tags=["batches"])
class BatchDetailView(ConsoleView):
    required_permissions = {"GET": (VIEW_BATCH,)}

    @extend_schema(summary=_("A batch"), responses={200: s.BatchSerializer, **error_responses(404)})
    def get(self, request, batch_id: int):
        return _batch_answer(batch_or_404(batch_id))


@extend_schema(tags=["batches"])
class BatchFileView(ConsoleView):
    required_permissions = {"POST": (IMPORT,)}
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary=_("Stage a file into a batch"),
        description=_(
            "The whole file is checked first; a file with any problem stages nothing and "
            "the answer lists every problem by row, id and column. With `on_problems=flag`, "
            "a file whose only problems are ones validation would flag is staged, and the "
            "answer lists them. With `dry_run`, the file is only checked."
        ),
        request={"multipart/form-data": s.FileUploadSerializer},
        responses={
            200: OpenApiResponse(s.StagedFileSerializer, description=_("Dry run: checked.")),
            201: OpenApiResponse(s.StagedFileSerializer, description=_("Staged.")),
            400: OpenApiResponse(s.FileErrorSerializer, description=_("Refused; nothing staged.")),
            **error_responses(404, 409),
        },
    )
    def post(self, request, batch_id: int):
        batch = batch_or_404(batch_id)
        data = request_data(s.FileUploadSerializer, request)
        batch_services.batch_edit_check(batch=batch)
        upload = data["file"]
        result = batch_stage_file(
            batch=batch,
            kind=data["kind"],
            file_name=upload.name,
            # Read where Django keeps it (a temporary file once it is big), not copied.
            content=upload,
            user=request.user,
            dry_run=data["dry_run"],
            mapping=data.get("mapping"),
            on_problems=data["on_problems"],
        )
        if result.has_errors():
            extra = {}
            if result.suggested_mapping is not None:
                extra["suggested_mapping"] = result.suggested_mapping
            body = error_body(
                error="invalid",
                details=ERR_FILE_REFUSED % {"file": upload.name, "count": result.problem_count},
                fields={"file": result.shown_messages()},
                problems=s.RowProblemSerializer(result.shown_problems, many=True).data,
                problem_count=result.problem_count,
                **extra,
            )
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        if not data["dry_run"]:
            batch_services.upload_record(
                batch=batch,
                kind=data["kind"],
                file_name=upload.name,
                content=upload,
                user=request.user,
                result=result,
                mapping=data.get("mapping"),
            )
        answer = {
            "batch": batch_or_404(batch.pk),
            "kind": data["kind"],
            "file_name": upload.name,
            "dry_run": data["dry_run"],
            "staged": result.staged,
            "mapping": result.mapping_document,
            "problems": result.shown_problems,
            "problem_count": result.problem_count,
        }
        code = status.HTTP_200_OK if data["dry_run"] else status.HTTP_201_CREATED
        return Response(s.StagedFileSerializer(answer).data, status=code)


@extend_schema(tags=["batches"])
class BatchValidateView(ConsoleView):
    required_permissions = {"POST": (CHANGE_BATCH,)}

    @extend_schema(
        summary=_("Validate a batch"),
        description=_(
            "Checks every staged customer against Masivo's contract. The batch becomes "
            "validated when no customer left to send is invalid."
        ),
        request=None,
        responses={200: s.ValidationSummarySerializer, **error_responses(404, 409)},
    )
    def post(self, request, batch_id: int):
        batch = batch_or_404(batch_id)
        summary = batch_validate(batch=batch, user=request.user)
        answer = {
            "valid": summary.valid,
            "invalid": summary.invalid,
            "excluded": summary.excluded,
            "problem_count": summary.problem_count,
            "is_validated": summary.is_validated,
            "batch": batch_or_404(batch.pk),
        }
        return Response(s.ValidationSummarySerializer(answer).data)


@extend_schema(tags=["batches"])
class BatchProblemListView(ConsoleListView):
    # A problem quotes the customer's values: customers' data.
    required_permissions = {"GET": (VIEW_BATCH, VIEW_CUSTOMER)}
    serializer_class = s.ProblemSerializer

    def get_queryset(self):
        batch = batch_or_404(self.kwargs["batch_id"])
        return selectors.batch_problem_list(
            batch=batch, **query_params(filters.ProblemFilters, self.request)
        )

    @extend_schema(
        summary=_("A batch's problems"),
        parameters=[filters.ProblemFilters],
        responses={200: s.ProblemSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


@extend_schema(tags=["batches"])
class BatchCustomerListView(ConsoleListView):
    required_permissions = {"GET": (VIEW_BATCH, VIEW_CUSTOMER)}
    serializer_class = s.CustomerSerializer

    def get_queryset(self):
        batch = batch_or_404(self.kwargs["batch_id"])
        return selectors.batch_customer_list(
            batch=batch, **query_params(filters.CustomerFilters, self.request)
        )

    @extend_schema(
        summary=_("A batch's staged customers"),
        parameters=[filters.CustomerFilters],
        responses={200: s.CustomerSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


def _customer_pks(batch: StagingBatch, legacy_ids: list[str]) -> list[int]:
    found = selectors.batch_customer_pks(batch=batch, legacy_ids=legacy_ids)
    missing = [legacy_id for legacy_id in dict.fromkeys(legacy_ids) if legacy_id not in found]
    if missing:
        ids = ", ".join(f"“{legacy_id}”" for legacy_id in missing)
        raise InputError({"legacy_ids": [ERR_NOT_STAGED_HERE % {"batch": batch.name, "ids": ids}]})
    return list(found.values())


@extend_schema(tags=["batches"])
class BatchExclusionView(ConsoleView):
    required_permissions = {"POST": (CHANGE_BATCH,)}

    @extend_schema(
        summary=_("Exclude customers from the migration, or include them again"),
        request=s.ExclusionSerializer,
        responses={200: s.CustomersChangedSerializer, **error_responses(400, 404, 409)},
    )
    def post(self, request, batch_id: int):
        batch = batch_or_404(batch_id)
        data = request_data(s.ExclusionSerializer, request)
        updated = customers_set_excluded(
            batch=batch,
            customer_ids=_customer_pks(batch, data["legacy_ids"]),
            excluded=data["excluded"],
            reason=data["reason"],
            user=request.user,
        )
        answer = {"updated": updated, "batch": batch_or_404(batch.pk)}
        return Response(s.CustomersChangedSerializer(answer).data)


@extend_schema(tags=["batches"])
class BatchSendAgainView(ConsoleView):
    required_permissions = {"POST": (APPROVE,)}

    @extend_schema(
        summary=_("Send customers again"),
        description=_(
            "The console sends a customer id to a Masivo account once. This sends the "
            "chosen customers again anyway: customers of a submitted batch that were sent "
            "or skipped go out in new chunks of its job; in a batch not yet approved they "
            "are marked, and its job will send them although another batch sent them. "
            "Needs the permission to approve batches and a reason, both recorded."
        ),
        request=s.SendAgainSerializer,
        responses={201: s.SendAgainRecordSerializer, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request, batch_id: int):
        batch = batch_or_404(batch_id)
        data = request_data(s.SendAgainSerializer, request)
        record = services.customers_send_again(
            batch=batch,
            customer_ids=_customer_pks(batch, data["legacy_ids"]),
            reason=data["reason"],
            user=request.user,
        )
        return Response(s.SendAgainRecordSerializer(record).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["batches"])
class BatchApproveView(ConsoleView):
    required_permissions = {"POST": (APPROVE,)}

    @extend_schema(
        summary=_("Approve a validated batch"),
        description=_(
            "Four-eyes rule: the approver must be none of the people who put data into the "
            "batch: its creator, whoever imported a file into it or changed its rows (403 "
            "otherwise)."
        ),
        request=None,
        responses={200: s.BatchApprovedSerializer, **error_responses(404, 409)},
    )
    def post(self, request, batch_id: int):
        batch = batch_services.batch_approve(batch=batch_or_404(batch_id), user=request.user)
        batch = batch_or_404(batch.pk)
        batch.overlaps = batch_overlaps(batch=batch)
        return Response(s.BatchApprovedSerializer(batch).data)


@extend_schema(tags=["batches"])
class BatchReopenView(ConsoleView):
    required_permissions = {"POST": (CHANGE_BATCH,)}

    @extend_schema(
        summary=_("Reopen a validated or approved batch"),
        description=_("Voids the validation and the approval: the batch is a draft again."),
        request=None,
        responses={200: s.BatchSerializer, **error_responses(404, 409)},
    )
    def post(self, request, batch_id: int):
        batch = batch_services.batch_reopen(batch=batch_or_404(batch_id), user=request.user)
        return _batch_answer(batch)


@extend_schema(tags=["batches"])
class BatchDryRunView(ConsoleView):
    # The request bodies are customers' data.
    required_permissions = {"GET": (VIEW_BATCH, VIEW_CUSTOMER)}
    renderer_classes = [JSONRenderer, JSONLinesRenderer]

    @extend_schema(
        summary=_("A batch's dry run"),
        description=_(
            "Every request body a job would send for this batch to one endpoint (the "
            "customers', the transactions' or the events'), one JSON document per line "
            "(JSON Lines), streamed. Nothing is sent."
        ),
        parameters=[filters.DryRunFilters],
        responses={
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            **error_responses(400, 404, 409),
        },
    )
    def get(self, request, batch_id: int):
        batch = batch_or_404(batch_id)
        endpoint = query_params(filters.DryRunFilters, request)["endpoint"]
        batch_services.batch_dry_run_check(batch=batch)
        batch_services.customer_data_log(
            user=request.user, what=dry_run_label(endpoint), batch_id=batch.pk
        )
        lines = dry_run_lines(endpoint=endpoint, batch=batch)
        suffix = "dry-run" if endpoint == "customers" else f"dry-run-{endpoint}"
        response = StreamingHttpResponse(lines, content_type=JSONLinesRenderer.media_type)
        file_name = f"{slugify(batch.name) or batch.pk}-{suffix}.jsonl"
        response["Content-Disposition"] = f'attachment; filename="{file_name}"'
        return response
