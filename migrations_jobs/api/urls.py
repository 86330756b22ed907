"""The API's routes; mounted under ``api/`` by config/urls.py.

Ids in addresses are ``<id:...>`` (``console.ids.IdConverter``): an address matches only
with an id the database can hold; any other falls through to the JSON 404 at the end.
"""

from django.urls import path, re_path, register_converter

from console.ids import IdConverter
from migrations_jobs.api.views import base, batches, docs, history, jobs, mappings

register_converter(IdConverter, "id")

app_name = "api"

urlpatterns = [
    path("schema/", docs.SchemaView.as_view(), name="schema"),
    path("docs/", docs.DocsView.as_view(url_name="api:schema"), name="docs"),
    # batches
    path("batches/", batches.BatchListView.as_view(), name="batch-list"),
    path("batches/<id:batch_id>/", batches.BatchDetailView.as_view(), name="batch-detail"),
    path("batches/<id:batch_id>/files/", batches.BatchFileView.as_view(), name="batch-files"),
    path(
        "batches/<id:batch_id>/validate/",
        batches.BatchValidateView.as_view(),
        name="batch-validate",
    ),
    path(
        "batches/<id:batch_id>/problems/",
        batches.BatchProblemListView.as_view(),
        name="batch-problems",
    ),
    path(
        "batches/<id:batch_id>/customers/",
        batches.BatchCustomerListView.as_view(),
        name="batch-customers",
    ),
    path(
        "batches/<id:batch_id>/exclusions/",
        batches.BatchExclusionView.as_view(),
        name="batch-exclusions",
    ),
    path(
        "batches/<id:batch_id>/send-again/",
        batches.BatchSendAgainView.as_view(),
        name="batch-send-again",
    ),
    path(
        "batches/<id:batch_id>/approve/", batches.BatchApproveView.as_view(), name="batch-approve"
    ),
    path("batches/<id:batch_id>/reopen/", batches.BatchReopenView.as_view(), name="batch-reopen"),
    path("batches/<id:batch_id>/dry-run/", batches.BatchDryRunView.as_view(), name="batch-dry-run"),
    path(
        "batches/<id:batch_id>/reconciliation/",
        history.BatchReconciliationView.as_view(),
        name="batch-reconciliation",
    ),
    path("batches/<id:batch_id>/submit/", jobs.BatchSubmitView.as_view(), name="batch-submit"),
    # mapping profiles
    path("mappings/", mappings.MappingListView.as_view(), name="mapping-list"),
    path("mappings/<id:profile_id>/", mappings.MappingDetailView.as_view(), name="mapping-detail"),
    # jobs
    path("jobs/", jobs.JobListView.as_view(), name="job-list"),
    path("jobs/<id:job_id>/", jobs.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<id:job_id>/cancel/", jobs.JobCancelView.as_view(), name="job-cancel"),
    path(
        "jobs/<id:job_id>/retry-failed/",
        jobs.JobRetryFailedView.as_view(),
        name="job-retry-failed",
    ),
    path("jobs/<id:job_id>/resume/", jobs.JobResumeView.as_view(), name="job-resume"),
    path(
        "jobs/<id:job_id>/held/arrived/",
        jobs.JobHeldArrivedView.as_view(),
        name="job-held-arrived",
    ),
    path(
        "jobs/<id:job_id>/held/send-again/",
        jobs.JobHeldSendAgainView.as_view(),
        name="job-held-send-again",
    ),
    path(
        "jobs/<id:job_id>/customers.csv",
        jobs.JobCustomerCSVView.as_view(),
        name="job-customers-csv",
    ),
    path(
        "jobs/<id:job_id>/history.csv",
        jobs.JobHistoryCSVView.as_view(),
        name="job-history-csv",
    ),
    path(
        "jobs/<id:job_id>/failed-customers/",
        jobs.JobFailedCustomerListView.as_view(),
        name="job-failed-customers",
    ),
    path(
        "jobs/<id:job_id>/failed-customers.csv",
        jobs.JobFailedCustomerCSVView.as_view(),
        name="job-failed-customers-csv",
    ),
    # Last: anything else under api/ (a bad id, a typo, a line break) answers a JSON 404.
    re_path(r"^[\s\S]*$", base.NotFoundView.as_view(), name="not-found"),
]
