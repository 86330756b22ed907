"""The admin's lists looked up by a number no integer column holds (``?batch=``, ``?job=``,
``?other_batch=``) answer as the admin answers any lookup it cannot make: the list again
with ``?e=1``, never a server error from the database."""

import pytest
from django.contrib import admin
from django.db import models
from django.urls import reverse

from customers.admin.mixins import lookup_integer_field
from customers.models import CustomerProblem, StagedCustomer
from migrations_jobs.models import JobChunk, MigrationJob
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
TOO_BIG = "99999999999999999999"
PACKAGES = ("customers.", "migrations_jobs.")


@pytest.fixture
def root(client):
    client.force_login(UserFactory(username="root", is_superuser=True))
    return client


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def assert_invalid_lookup(response, model) -> None:
    assert response.status_code == 302, response.status_code
    assert response["Location"] == f"{changelist(model)}?e=1"


@pytest.mark.parametrize(
    ("model", "parameter"),
    [
        (StagedCustomer, "batch"),
        (MigrationJob, "batch"),
        (CustomerProblem, "batch"),
        (CustomerProblem, "other_batch"),
        (JobChunk, "job"),
        (StagedCustomer, "batch__id__in"),
        (MigrationJob, "id__in"),
    ],
)
@pytest.mark.parametrize("value", [TOO_BIG, f"-{TOO_BIG}", f"1,{TOO_BIG}"])
def test_a_lookup_by_a_number_no_column_holds_is_an_invalid_lookup(root, model, parameter, value):
    if "," in value and not parameter.endswith("__in"):
        value = TOO_BIG
    assert_invalid_lookup(root.get(changelist(model), {parameter: value}), model)


def integer_lookups():
    """Every integer column (and key) of every list of the console's admin, by name."""
    for model in admin.site._registry:
        if not model.__module__.startswith(PACKAGES):
            continue
        for field in model._meta.get_fields():
            if (
                field.concrete
                and not field.many_to_many
                and lookup_integer_field(model, field.name)
            ):
                yield pytest.param(model, field.name, id=f"{model.__name__}.{field.name}")


@pytest.mark.parametrize(("model", "lookup"), list(integer_lookups()))
def test_no_integer_lookup_of_any_list_is_a_server_error(root, model, lookup):
    response = root.get(changelist(model), {lookup: TOO_BIG})
    assert response.status_code in (200, 302), (lookup, response.status_code)
    if response.status_code == 302:
        assert_invalid_lookup(response, model)


def test_a_lookup_within_range_still_filters(root):
    customer = CustomerFactory()
    response = root.get(changelist(StagedCustomer), {"batch": customer.batch_id})
    assert response.status_code == 200
    assert customer.legacy_id in response.content.decode()


def test_the_lookups_resolve_to_the_column_compared():
    assert isinstance(lookup_integer_field(StagedCustomer, "batch"), models.BigAutoField)
    assert isinstance(lookup_integer_field(JobChunk, "job__id__in"), models.BigAutoField)
    assert lookup_integer_field(StagedCustomer, "batch__name__icontains") is None
    assert lookup_integer_field(StagedCustomer, "no_such_field") is None
