import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.urls import reverse
from rest_framework import exceptions

from console.ids import ID_MAX
from customers.services import BatchStateError
from migrations_jobs.api import urls as api_urls
from migrations_jobs.api.exceptions import (
    ERR_NOT_FOUND,
    ERR_PERMISSION,
    ERR_TOO_MANY_FIELDS,
    api_exception_handler,
)
from migrations_jobs.services import JobStateError
from tests.factories import UserFactory


def handle(exc):
    response = api_exception_handler(exc, {})
    return response.status_code, response.data


def test_django_404_and_403_keep_the_one_shape():
    assert handle(Http404("No StagingBatch matches")) == (
        404,
        {"error": "not_found", "details": str(ERR_NOT_FOUND)},
    )
    assert handle(PermissionDenied()) == (
        403,
        {"error": "permission_denied", "details": str(ERR_PERMISSION)},
    )
    assert handle(PermissionDenied("Four-eyes rule: …")) == (
        403,
        {"error": "permission_denied", "details": "Four-eyes rule: …"},
    )


def test_state_errors_of_batches_and_jobs_are_conflicts():
    assert handle(BatchStateError("Batch “b” is approved.", code="state")) == (
        409,
        {"error": "conflict", "details": "Batch “b” is approved."},
    )
    assert handle(JobStateError("Job #3 is succeeded.", code="state")) == (
        409,
        {"error": "conflict", "details": "Job #3 is succeeded."},
    )


def test_django_validation_errors_name_their_fields():
    status, body = handle(
        ValidationError({"name": ["Taken."], "__all__": ["Something else is wrong."]})
    )
    assert status == 400
    assert body == {
        "error": "invalid",
        "details": "Something else is wrong. Some fields are not valid: name. Taken.",
        "fields": {"name": ["Taken."]},
    }
    assert handle(ValidationError("Too long.")) == (
        400,
        {"error": "invalid", "details": "Too long."},
    )


def test_serializer_errors_name_their_fields():
    status, body = handle(exceptions.ValidationError({"kind": ["Not a kind."]}))
    assert (status, body["error"], body["fields"]) == (400, "invalid", {"kind": ["Not a kind."]})
    assert body["details"] == "Some fields are not valid: kind. Not a kind."


def test_errors_inside_a_field_are_sentences_saying_where():
    status, body = handle(
        exceptions.ValidationError(
            {"legacy_ids": {0: ["This field may not be blank."]}, "document": {"kind": ["Bad."]}}
        )
    )
    assert status == 400
    assert body["fields"] == {
        "legacy_ids": ["[0] This field may not be blank."],
        "document": ["kind: Bad."],
    }


def test_other_api_errors_keep_their_code_and_headers():
    response = api_exception_handler(exceptions.Throttled(wait=7), {})
    assert (response.status_code, response.data["error"]) == (429, "throttled")
    assert response["Retry-After"] == "7"
    assert handle(exceptions.MethodNotAllowed("PUT"))[1]["error"] == "method_not_allowed"


def test_a_bug_is_left_to_django():
    assert api_exception_handler(KeyError("x"), {}) is None


@pytest.mark.django_db
def test_malformed_json_is_a_400_in_the_one_shape(as_user, importer):
    response = as_user(importer).post(
        reverse("api:batch-list"), data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"
    assert set(response.json()) == {"error", "details"}


@pytest.mark.django_db
def test_a_form_past_djangos_field_limit_is_a_400_in_the_one_shape(as_user, approver, batch):
    body = "&".join(f"legacy_ids=c-{number}" for number in range(1001))
    response = as_user(approver).post(
        reverse("api:batch-send-again", args=[batch.pk]),
        data=f"reason=again&{body}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"error": "parse_error", "details": str(ERR_TOO_MANY_FIELDS)}


@pytest.mark.django_db
def test_wrong_method_is_a_405_in_the_one_shape(as_user, importer, batch):
    response = as_user(importer).delete(reverse("api:batch-detail", args=[batch.pk]))
    assert response.status_code == 405
    assert response.json() == {
        "error": "method_not_allowed",
        "details": 'Method "DELETE" not allowed.',
    }


@pytest.mark.django_db
def test_an_error_under_json_lines_is_one_json_line(as_user, importer, batch):
    response = as_user(importer).get(
        reverse("api:batch-dry-run", args=[batch.pk]), HTTP_ACCEPT="application/x-ndjson"
    )
    assert response.status_code == 409
    assert response.content.count(b"\n") == 1
    assert response.content.startswith(b'{"error": "conflict"')


@pytest.mark.parametrize(
    "path", ["/api/jobs/null/", "/api/batches/abc/files/", "/api/nothing-here"]
)
def test_an_address_with_no_endpoint_answers_a_json_404(api, path):
    response = api.get(path)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/api/batches/%0A/",  # a line break where an id goes
        "/api/jobs/1/%0A",
        "/api/jobs/99999999999999999999/",
        "/api/batches/9223372036854775808/approve/",
        "/api/batches/0/",
    ],
)
def test_an_address_with_an_id_that_cannot_be_one_answers_a_json_404(api, path):
    response = api.post(path) if path.endswith("approve/") else api.get(path)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "not_found"


def id_routes() -> list[tuple[str, str, str]]:
    """Every route with an id in its address: (name, method, parameter)."""
    found = []
    for pattern in api_urls.urlpatterns:
        route = str(pattern.pattern)
        if "<id:" not in route:
            continue
        view = pattern.callback.view_class
        method = next(m for m in ("get", "post", "put", "delete") if hasattr(view, m))
        found.append((pattern.name, method, route.split("<id:")[1].split(">")[0]))
    return found


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method", "parameter"), id_routes())
@pytest.mark.parametrize("value", [ID_MAX, ID_MAX + 1, 10**20])
def test_every_id_out_of_range_or_unknown_answers_a_json_404(api, name, method, parameter, value):
    api.force_authenticate(UserFactory(username="root", is_superuser=True))
    template = reverse(f"api:{name}", kwargs={parameter: 1})
    address = template.replace("/1/", f"/{value}/", 1)

    response = getattr(api, method)(address)

    assert response.status_code == 404, (address, response.content)
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "not_found"
