"""A job's customers as a CSV download: the same file and columns whichever door (admin or
API) asks, written by ``console.exports``. A failed customer's ``detail`` says in words
what Masivo refused and what to do (``migrations_jobs.failures``); ``response`` keeps
Masivo's raw answer (its chunk's last attempt's response excerpt)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from django.http import StreamingHttpResponse
from django.utils.translation import gettext

from console.exports import csv_lines
from customers.models import Outcome, StagedCustomer
from migrations_jobs.failures import failure_text
from migrations_jobs.models import Delivery, MigrationJob
from migrations_jobs.selectors import ChunkFailure, chunk_failures, job_customers

JOB_CUSTOMER_COLUMNS = [
    "legacy_id",
    "name",
    "email",
    "outcome",
    "outcome_at",
    "chunk",
    "attempts",
    "possibly_twice",
    "detail",
    "response",
]


def customer_outcome_detail(
    customer: StagedCustomer, failures: Mapping[int, ChunkFailure] | None = None
) -> str:
    """What happened to a customer of a job, in words (for a customer of ``job_customers``,
    which carries the other batch of a skipped customer; ``failures``: the job's failed
    chunks, from ``selectors.chunk_failures``)."""
    if customer.outcome == Outcome.FAILED:
        failure = (failures or {}).get(customer.outcome_chunk_id)
        if failure is None or not failure.is_recorded:
            return customer.outcome_error
        return failure_text(failure).text
    if customer.outcome == Outcome.SKIPPED:
        values = {"batch": customer.other_batch_name or "?", "job": customer.outcome_other_job_id}
        status = customer.other_delivery_status
        if status == Delivery.Status.SENT:
            return gettext("Sent by batch “%(batch)s”, job #%(job)s.") % values
        if status == Delivery.Status.BOOKED:
            return gettext("Being sent by batch “%(batch)s”, job #%(job)s.") % values
        if status == Delivery.Status.UNCERTAIN:
            return (
                gettext(
                    "Batch “%(batch)s”, job #%(job)s, may have sent it (its outcome is unknown)."
                )
                % values
            )
        return (
            gettext(
                "Skipped while batch “%(batch)s”, job #%(job)s, held it; that job did not send "
                "it in the end. Send it again to send it from this batch."
            )
            % values
        )
    if customer.outcome == Outcome.SENT and customer.outcome_maybe_twice:
        return gettext("Sent after a request whose outcome was unknown: Masivo may hold it twice.")
    return ""


def job_customer_rows(
    customers: Iterable[StagedCustomer], failures: Mapping[int, ChunkFailure] | None = None
) -> Iterator[list]:
    """The CSV rows of a job's customers (from ``selectors.job_customers``), in
    ``JOB_CUSTOMER_COLUMNS`` order."""
    failures = failures or {}
    for customer in customers:
        failure = failures.get(customer.outcome_chunk_id)
        yield [
            customer.legacy_id,
            customer.name,
            customer.email,
            customer.outcome,
            customer.outcome_at.isoformat() if customer.outcome_at else "",
            customer.chunk_sequence if customer.chunk_sequence is not None else "",
            customer.chunk_attempts if customer.chunk_attempts is not None else "",
            "yes" if customer.outcome_maybe_twice else "",
            customer_outcome_detail(customer, failures),
            failure.excerpt if failure and customer.outcome == Outcome.FAILED else "",
        ]


def job_customers_csv(
    customers: Iterable[StagedCustomer], failures: Mapping[int, ChunkFailure] | None = None
) -> Iterator[str]:
    """The whole CSV of a job's customers, streamed."""
    return csv_lines(JOB_CUSTOMER_COLUMNS, job_customer_rows(customers, failures))


def customers_csv_response(
    *, job: MigrationJob, outcome: str | None, possibly_twice: bool
) -> StreamingHttpResponse:
    """The job's customers as CSV, streamed: the admin's and the API's download."""
    customers = job_customers(job=job, outcome=outcome, possibly_twice=possibly_twice)
    has_failed = outcome in (None, Outcome.FAILED) and not possibly_twice
    failures = chunk_failures(job=job) if has_failed else {}
    response = StreamingHttpResponse(
        job_customers_csv(customers.iterator(chunk_size=2000), failures),
        content_type="text/csv; charset=utf-8",
    )
    name = "possibly-twice" if possibly_twice else (outcome or "customers")
    response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-{name}.csv"'
    return response
