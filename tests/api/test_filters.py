"""The lists' query parameters: an id out of range, a value that is not one, an empty
parameter, a page out of bounds are refused in JSON naming the parameter (never a server
error); text is compared as sent."""

import pytest
from django.urls import reverse

from console.ids import ID_MAX
from migrations_jobs.api.filters import ERR_EMPTY
from tests.factories import BatchFactory, JobFactory, UserFactory

pytestmark = pytest.mark.django_db
TOO_BIG = "99999999999999999999"


@pytest.fixture
def viewer(db):
    return UserFactory(
        username="viewer",
        perms=[
            "customers.view_stagingbatch",
            "customers.view_stagedcustomer",
            "migrations_jobs.view_migrationjob",
        ],
    )


def refused(response, parameter: str) -> list[str]:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "invalid"
    assert list(body["fields"]) == [parameter]
    return body["fields"][parameter]


@pytest.mark.parametrize("value", [TOO_BIG, str(ID_MAX + 1), "0", "-1", "abc", "1e3"])
def test_a_job_filter_by_a_batch_id_out_of_range_or_not_one_is_refused(as_user, viewer, value):
    response = as_user(viewer).get(reverse("api:job-list"), {"batch": value})
    refused(response, "batch")


def test_a_job_filter_by_the_largest_id_finds_nothing(as_user, viewer):
    JobFactory()
    response = as_user(viewer).get(reverse("api:job-list"), {"batch": str(ID_MAX)})
    assert (response.status_code, response.json()["count"]) == (200, 0)


@pytest.mark.parametrize(
    ("name", "parameter"),
    [
        ("api:batch-list", "status"),
        ("api:job-list", "status"),
        ("api:job-list", "batch"),
        ("api:batch-problems", "code"),
        ("api:batch-problems", "field"),
        ("api:batch-customers", "is_valid"),
        ("api:batch-customers", "outcome"),
        ("api:batch-list", "page"),
        ("api:batch-list", "page_size"),
    ],
)
def test_an_empty_parameter_is_refused_not_ignored(as_user, viewer, batch, name, parameter):
    address = reverse(name, args=[] if name.endswith("-list") else [batch.pk])
    response = as_user(viewer).get(address, {parameter: ""})
    assert refused(response, parameter) == [str(ERR_EMPTY)]


def test_an_empty_format_is_refused_like_any_empty_parameter(as_user, viewer, batch):
    job = JobFactory(batch=BatchFactory(status="submitted"))
    response = as_user(viewer).get(reverse("api:job-customers-csv", args=[job.pk]), {"format": ""})
    assert refused(response, "format") == [str(ERR_EMPTY)]


def test_a_field_filter_is_compared_as_sent_spaces_included(as_user, viewer, batch):
    response = as_user(viewer).get(reverse("api:batch-problems", args=[batch.pk]), {"field": " "})
    assert (response.status_code, response.json()["count"]) == (200, 0)


@pytest.mark.parametrize(
    ("parameter", "value"),
    [("page", "0"), ("page", "abc"), ("page", TOO_BIG), ("page_size", "0"), ("page_size", "1001")],
)
def test_a_page_or_size_out_of_bounds_is_refused(as_user, viewer, parameter, value):
    response = as_user(viewer).get(reverse("api:batch-list"), {parameter: value})
    refused(response, parameter)


def test_a_page_past_the_last_is_not_found_in_json(as_user, viewer, batch):
    response = as_user(viewer).get(reverse("api:batch-list"), {"page": 2})
    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "details": "Page 2 is past the last page of this list.",
    }
