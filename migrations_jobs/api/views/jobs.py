"""Jobs: submit an approved batch, follow a job, cancel, retry failed chunks, resume, and
list the customers that failed."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from migrations_jobs import services
from migrations_jobs.api import selectors
from migrations_jobs.api import serializers as s
from migrations_jobs.api.exports import FAILED_CUSTOMER_COLUMNS, csv_lines, failed_customer_rows
from migrations_jobs.api.permissions import VIEW_CUSTOMER, VIEW_JOB
from migrations_jobs.api.views.base import (
    ConsoleListView,
    ConsoleView,
    CSVRenderer,
    error_responses,
    query_params,
)
from migrations_jobs.api.views.batches import batch_or_404
from migrations_jobs.models import MigrationJob
from migrations_jobs.selectors import job_progress

ERR_JOB_NOT_FOUND = _("There is no job with id %(id)s.")


def job_or_404(job_id: int) -> MigrationJob:
    job = selectors.job_list().filter(pk=job_id).first()
    if job is None:
        raise NotFound(ERR_JOB_NOT_FOUND % {"id": job_id})
    return job


def _job_answer(job: MigrationJob, code: int = status.HTTP_200_OK) -> Response:
    job = job_or_404(job.pk)
    job.progress = job_progress(job=job)
    return Response(s.JobSerializer(job).data, status=code)


@extend_schema(tags=["jobs"])
class BatchSubmitView(ConsoleView):
    required_permissions = {"POST": (services.SUBMIT_PERMISSION,)}

    @extend_schema(
        summary=_("Submit an approved batch to Masivo"),
        description=_(
            "Creates the batch's migration job and hands it to the workers. Refused (409) "
            "unless the batch is approved and unchanged since its approval."
        ),
        request=None,
        responses={201: s.JobSerializer, **error_responses(404, 409)},
    )
    def post(self, request, batch_id: int):
        job = services.job_start(batch=batch_or_404(batch_id), user=request.user)
        return _job_answer(job, status.HTTP_201_CREATED)


@extend_schema(tags=["jobs"])
class JobListView(ConsoleListView):
    required_permissions = {"GET": (VIEW_JOB,)}
    serializer_class = s.JobSerializer

    def get_queryset(self):
        return selectors.job_list(**query_params(s.JobFilterSerializer, self.request))

    @extend_schema(
        summary=_("List jobs"),
        parameters=[s.JobFilterSerializer],
        responses={200: s.JobSerializer(many=True), **error_responses(400)},
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


@extend_schema(tags=["jobs"])
class JobDetailView(ConsoleView):
    required_permissions = {"GET": (VIEW_JOB,)}

    @extend_schema(
        summary=_("A job's status, progress and counts"),
        responses={200: s.JobSerializer, **error_responses(404)},
    )
    def get(self, request, job_id: int):
        return _job_answer(job_or_404(job_id))


@extend_schema(tags=["jobs"])
class JobCancelView(ConsoleView):
    required_permissions = {"POST": (services.CANCEL_PERMISSION,)}

    @extend_schema(
        summary=_("Cancel a job"),
        description=_(
            "No new request starts; requests in flight finish and are recorded. Customers "
            "not sent stay not sent."
        ),
        request=None,
        responses={200: s.JobSerializer, **error_responses(404, 409)},
    )
    def post(self, request, job_id: int):
        return _job_answer(services.job_cancel(job=job_or_404(job_id), user=request.user))


@extend_schema(tags=["jobs"])
class JobRetryFailedView(ConsoleView):
    required_permissions = {"POST": (services.RETRY_PERMISSION,)}

    @extend_schema(
        summary=_("Retry a job's failed chunks"),
        description=_("Each failed chunk is sent again as a new chunk; the job runs again."),
        request=None,
        responses={200: s.JobSerializer, **error_responses(404, 409)},
    )
    def post(self, request, job_id: int):
        return _job_answer(services.job_retry_failed(job=job_or_404(job_id), user=request.user))


@extend_schema(tags=["jobs"])
class JobResumeView(ConsoleView):
    required_permissions = {"POST": (services.RETRY_PERMISSION,)}

    @extend_schema(
        summary=_("Resume a job whose worker died"),
        description=_(
            "Chunks whose worker lease expired go back to pending and the job's task is "
            "enqueued again. Only a queued or running job can resume."
        ),
        request=None,
        responses={200: s.JobSerializer, **error_responses(404, 409)},
    )
    def post(self, request, job_id: int):
        return _job_answer(services.job_resume(job=job_or_404(job_id), user=request.user))


@extend_schema(tags=["jobs"])
class JobFailedCustomerListView(ConsoleListView):
    required_permissions = {"GET": (VIEW_JOB, VIEW_CUSTOMER)}
    serializer_class = s.FailedCustomerSerializer

    def get_queryset(self):
        return selectors.job_failed_customers(job=job_or_404(self.kwargs["job_id"]))

    @extend_schema(
        summary=_("A job's failed customers"),
        responses={200: s.FailedCustomerSerializer(many=True), **error_responses(404)},
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


@extend_schema(tags=["jobs"])
class JobFailedCustomerCSVView(ConsoleView):
    required_permissions = {"GET": (VIEW_JOB, VIEW_CUSTOMER)}
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        summary=_("A job's failed customers as CSV"),
        description=_(
            "Every failed customer, streamed. A cell starting with =, +, -, @, a tab or a "
            "carriage return is prefixed with a single quote, so that no spreadsheet runs it "
            "as a formula."
        ),
        responses={(200, "text/csv"): OpenApiTypes.STR, **error_responses(404)},
    )
    def get(self, request, job_id: int):
        job = job_or_404(job_id)
        customers = selectors.job_failed_customers(job=job).iterator(chunk_size=2000)
        response = StreamingHttpResponse(
            csv_lines(FAILED_CUSTOMER_COLUMNS, failed_customer_rows(customers)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-failed.csv"'
        return response
