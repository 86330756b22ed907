"""Jobs: submit an approved batch, follow a job, cancel, retry failed chunks, resume, and
list the customers that failed."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from customers.models import Outcome
from customers.selectors import batch_overlaps
from customers.services import customer_data_log
from migrations_jobs import services
from migrations_jobs.api import filters, selectors
from migrations_jobs.api import serializers as s
from migrations_jobs.api.permissions import VIEW_CUSTOMER, VIEW_JOB
from migrations_jobs.api.views.base import (
    ConsoleListView,
    ConsoleView,
    CSVRenderer,
    error_responses,
    query_params,
)
from migrations_jobs.api.views.batches import batch_or_404
from migrations_jobs.exports import customers_csv_response
from migrations_jobs.history_exports import history_csv_response
from migrations_jobs.models import MigrationJob
from migrations_jobs.selectors import chunk_failures, job_failed_customers, job_progress

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
        responses={201: s.JobStartedSerializer, **error_responses(404, 409)},
    )
    def post(self, request, batch_id: int):
        batch = batch_or_404(batch_id)
        job = services.job_start(batch=batch, user=request.user)
        job = job_or_404(job.pk)
        job.progress = job_progress(job=job)
        job.overlaps = batch_overlaps(batch=batch)
        return Response(s.JobStartedSerializer(job).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["jobs"])
class JobListView(ConsoleListView):
    required_permissions = {"GET": (VIEW_JOB,)}
    serializer_class = s.JobSerializer

    def get_queryset(self):
        return selectors.job_list(**query_params(filters.JobFilters, self.request))

    @extend_schema(
        summary=_("List jobs"),
        parameters=[filters.JobFilters],
        responses={200: s.JobSerializer(many=True), **error_responses(400, 404)},
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
        return job_failed_customers(job=job_or_404(self.kwargs["job_id"]))

    def get_serializer_context(self):
        job = job_or_404(self.kwargs["job_id"])
        return {**super().get_serializer_context(), "failures": chunk_failures(job=job)}

    @extend_schema(
        summary=_("A job's failed customers"),
        responses={200: s.FailedCustomerSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


CSV_DESCRIPTION = _(
    "Streamed, one customer per line: legacy_id, name, email, outcome, outcome_at, chunk, "
    "attempts (of that chunk), possibly_twice (yes when Masivo may hold the customer twice), "
    "detail (in words: what Masivo refused and what to do, or which batch sent a skipped "
    "customer) and response (Masivo's answer to a failed customer's chunk, as received). A "
    "cell starting with =, +, -, @, a tab or a carriage return is prefixed with a single "
    "quote, so that no spreadsheet runs it as a formula."
)


@extend_schema(tags=["jobs"])
class JobFailedCustomerCSVView(ConsoleView):
    required_permissions = {"GET": (VIEW_JOB, VIEW_CUSTOMER)}
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        summary=_("A job's failed customers as CSV"),
        description=CSV_DESCRIPTION,
        responses={(200, "text/csv"): OpenApiTypes.STR, **error_responses(400, 404)},
    )
    def get(self, request, job_id: int):
        job = job_or_404(job_id)
        customer_data_log(user=request.user, what="failed customers CSV", job_id=job.pk)
        return customers_csv_response(job=job, outcome=Outcome.FAILED, possibly_twice=False)


@extend_schema(tags=["jobs"])
class JobCustomerCSVView(ConsoleView):
    required_permissions = {"GET": (VIEW_JOB, VIEW_CUSTOMER)}
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        summary=_("A job's customers as CSV"),
        description=CSV_DESCRIPTION,
        parameters=[filters.JobCustomerFilters],
        responses={(200, "text/csv"): OpenApiTypes.STR, **error_responses(400, 404)},
    )
    def get(self, request, job_id: int):
        job = job_or_404(job_id)
        chosen = query_params(filters.JobCustomerFilters, request)
        customer_data_log(user=request.user, what="customers CSV", job_id=job.pk)
        return customers_csv_response(
            job=job,
            outcome=chosen.get("outcome") or None,
            possibly_twice=bool(chosen.get("possibly_twice")),
        )


@extend_schema(tags=["jobs"])
class JobHeldArrivedView(ConsoleView):
    required_permissions = {"POST": (services.RETRY_PERMISSION,)}

    @extend_schema(
        summary=_("Count the held chunks as arrived"),
        description=_(
            "For a job waiting for a decision (held): its chunks of unknown outcome count "
            "as sent, because an operator found their customers in Masivo."
        ),
        request=None,
        responses={200: s.JobSerializer, **error_responses(404, 409)},
    )
    def post(self, request, job_id: int):
        job = services.job_held_mark_arrived(job=job_or_404(job_id), user=request.user)
        return _job_answer(job)


@extend_schema(tags=["jobs"])
class JobHeldSendAgainView(ConsoleView):
    required_permissions = {"POST": (services.RETRY_PERMISSION,)}

    @extend_schema(
        summary=_("Send the held chunks again"),
        description=_(
            "For a job waiting for a decision (held): its chunks of unknown outcome are sent "
            "again (their customers may then arrive twice, and are marked so)."
        ),
        request=None,
        responses={200: s.JobSerializer, **error_responses(404, 409)},
    )
    def post(self, request, job_id: int):
        job = services.job_held_resend(job=job_or_404(job_id), user=request.user)
        return _job_answer(job)


@extend_schema(tags=["jobs"])
class JobHistoryCSVView(ConsoleView):
    required_permissions = {"GET": (VIEW_JOB, VIEW_CUSTOMER)}
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        summary=_("What became of a job's transactions and events, as CSV"),
        description=_(
            "One line per customer, kind (transactions or events) and chunk: rows, outcome "
            "(sent, failed, held, not_sent, cancelled, left_out), chunk, attempts and why."
        ),
        responses={(200, "text/csv"): OpenApiTypes.STR, **error_responses(404)},
    )
    def get(self, request, job_id: int):
        job = job_or_404(job_id)
        customer_data_log(user=request.user, what="history CSV", job_id=job.pk)
        return history_csv_response(job=job)
