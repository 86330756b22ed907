"""A submitted batch's counts of customers by outcome count only what it sends."""

import pytest

from migrations_jobs.selectors import batch_outcome_counts
from tests.factories import BatchFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def test_excluded_and_invalid_customers_are_not_counted_as_not_sent():
    batch = BatchFactory()
    CustomerFactory(batch=batch, is_valid=True, outcome="sent")
    CustomerFactory(batch=batch, is_valid=True)
    CustomerFactory(batch=batch, is_valid=True, is_excluded=True)
    CustomerFactory(batch=batch, is_valid=False)

    counts = batch_outcome_counts(batch=batch)

    assert counts["sent"] == 1
    assert counts["not_sent"] == 1
