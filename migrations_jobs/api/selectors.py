"""Reads shaped for the API that the apps' own selectors do not offer."""

from __future__ import annotations

from django.db.models import QuerySet

from customers.models import CustomerProblem, StagedCustomer, StagingBatch
from migrations_jobs.models import MigrationJob


def batch_list(*, status: str | None = None) -> QuerySet[StagingBatch]:
    batches = StagingBatch.objects.select_related(
        "created_by", "last_imported_by", "validated_by", "approved_by"
    )
    if status:
        batches = batches.filter(status=status)
    return batches


def batch_problem_list(
    *, batch: StagingBatch, field: str | None = None, code: str | None = None
) -> QuerySet[CustomerProblem]:
    problems = CustomerProblem.objects.filter(batch=batch).order_by("legacy_id", "field", "pk")
    if field:
        problems = problems.filter(field=field)
    if code:
        problems = problems.filter(code=code)
    return problems


def batch_customer_list(
    *,
    batch: StagingBatch,
    is_valid: bool | None = None,
    is_excluded: bool | None = None,
    outcome: str | None = None,
) -> QuerySet[StagedCustomer]:
    customers = StagedCustomer.objects.filter(batch=batch).order_by("pk")
    if is_valid is not None:
        customers = customers.filter(is_valid=is_valid)
    if is_excluded is not None:
        customers = customers.filter(is_excluded=is_excluded)
    if outcome:
        customers = customers.filter(outcome=outcome)
    return customers


def batch_customer_pks(*, batch: StagingBatch, legacy_ids: list[str]) -> dict[str, int]:
    """``{legacy_id: pk}`` of the given legacy ids that are staged in ``batch``."""
    found: dict[str, int] = {}
    unique = list(dict.fromkeys(legacy_ids))
    for start in range(0, len(unique), 1000):
        rows = StagedCustomer.objects.filter(
            batch=batch, legacy_id__in=unique[start : start + 1000]
        ).values_list("legacy_id", "pk")
        found.update(rows)
    return found


def job_list(*, batch: int | None = None, status: str | None = None) -> QuerySet[MigrationJob]:
    jobs = MigrationJob.objects.select_related("batch", "started_by", "cancelled_by")
    if batch is not None:
        jobs = jobs.filter(batch_id=batch)
    if status:
        jobs = jobs.filter(status=status)
    return jobs
