"""Metadata is bounded (at most 32 levels deep, 64 kB as JSON per customer) at every door:
the import's rows (see the hostile-file corpus in tests/reliability/test_bad_files.py),
validation of what is staged, and the admin's edit form."""

import json

import pytest
from django.urls import reverse

from customers.contract.bounds import METADATA_MAX_BYTES, json_depth, metadata_check
from customers.contract.messages import ContractError
from customers.models import CustomerProblem, StagingBatch
from customers.services import batch_validate
from tests.factories import BatchFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def nested(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_metadata_up_to_32_levels_and_64_kb_is_accepted():
    within = {"deep": nested(31), "notes": "x" * (METADATA_MAX_BYTES - 1000)}
    assert json_depth(within, stop_after=100) == 32
    assert metadata_check(within) is within


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        pytest.param(nested(33), "nested more than 32 levels deep", id="33 levels"),
        pytest.param({"list": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
                     "nested more than 32 levels deep", id="arrays count as levels"),
        pytest.param({"notes": "é" * 40_000}, "takes 78.1\u00a0KB written as JSON", id="80 kB"),
    ],
)  # fmt: skip
def test_metadata_past_the_bounds_is_refused_with_what_to_do(metadata, says):
    with pytest.raises(ContractError, match=says):
        metadata_check(metadata)


def test_validation_flags_staged_metadata_past_the_bounds_on_its_customer(importer):
    batch = BatchFactory(created_by=importer)
    deep = CustomerFactory(batch=batch, legacy_id="000001", metadata=nested(40))
    large = CustomerFactory(batch=batch, legacy_id="000002", metadata={"n": "x" * 70_000})
    fine = CustomerFactory(batch=batch, legacy_id="000003", metadata=nested(5))

    batch_validate(batch=batch, user=importer)

    problems = {p.customer_id: p.message for p in CustomerProblem.objects.filter(field="metadata")}
    assert set(problems) == {deep.pk, large.pk}
    assert "nested more than 32 levels deep" in problems[deep.pk]
    assert "at most 64.0\u00a0KB per customer" in problems[large.pk]
    assert fine.pk not in problems
    batch.refresh_from_db()
    assert batch.status == StagingBatch.Status.DRAFT


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        pytest.param("[" * 5000 + "]" * 5000, "nested more than 32", id="5000 levels"),
        pytest.param(json.dumps(nested(40)), "nested more than 32", id="40 levels"),
        pytest.param(json.dumps({"n": "x" * 300_000}), "per customer", id="300 kB"),
    ],
)
def test_the_edit_form_refuses_metadata_past_the_bounds_with_a_message(
    client, importer, typed, says
):
    customer = CustomerFactory(batch=BatchFactory(created_by=importer))
    client.force_login(importer)
    url = reverse("admin:customers_stagedcustomer_change", args=[customer.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "batch"}
    data.update({"metadata": typed})
    for prefix in ("balances", "devices", "metrics"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})

    response = client.post(url, data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["metadata"]
    assert says in errors[0]
    customer.refresh_from_db()
    assert customer.metadata != typed
