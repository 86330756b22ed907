import re

import pytest
from django.urls import URLPattern, reverse
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.validation import validate_schema

from migrations_jobs.api import urls as api_urls

pytestmark = pytest.mark.django_db


def api_paths() -> dict[str, set[str]]:
    """Every endpoint of the API's URLconf as an OpenAPI path, with its HTTP methods."""
    found: dict[str, set[str]] = {}
    for pattern in api_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        if pattern.name in ("schema", "docs", "not-found"):
            continue
        view = pattern.callback.cls
        path = "/api/" + re.sub(r"<int:(\w+)>", r"{\1}", str(pattern.pattern))
        methods = {m for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)}
        found[path] = methods
    return found


@pytest.fixture
def schema(client, importer):
    client.force_login(importer)
    GENERATOR_STATS.reset()
    response = client.get(reverse("api:schema"), {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_is_valid_openapi_3_without_generator_warnings(schema):
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)
    assert not GENERATOR_STATS, "drf-spectacular warned while building the schema"


def test_schema_lists_every_endpoint_and_method(schema):
    expected = api_paths()
    assert len(expected) == 24
    for path, methods in expected.items():
        assert path in schema["paths"], path
        assert set(schema["paths"][path]) == methods, path


def test_every_operation_documents_its_errors_in_the_one_error_shape(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"401", "403"} <= set(responses), (method, path)
            error = responses["403"]["content"]["application/json"]["schema"]["$ref"]
            assert error == "#/components/schemas/Error"
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["details", "error"]
    assert set(error["properties"]) == {"error", "details", "fields"}


def test_upload_is_documented_as_multipart_with_its_file_errors(schema):
    operation = schema["paths"]["/api/batches/{batch_id}/files/"]["post"]
    assert list(operation["requestBody"]["content"]) == ["multipart/form-data"]
    refused = operation["responses"]["400"]["content"]["application/json"]["schema"]
    assert refused["$ref"] == "#/components/schemas/FileError"
    assert "problems" in schema["components"]["schemas"]["FileError"]["properties"]


def test_downloads_are_documented_with_their_media_types(schema):
    dry_run = schema["paths"]["/api/batches/{batch_id}/dry-run/"]["get"]["responses"]["200"]
    assert list(dry_run["content"]) == ["application/x-ndjson"]
    csv = schema["paths"]["/api/jobs/{job_id}/failed-customers.csv"]["get"]["responses"]["200"]
    assert list(csv["content"]) == ["text/csv"]


def test_lists_are_documented_as_paginated(schema):
    for path in (
        "/api/batches/",
        "/api/batches/{batch_id}/problems/",
        "/api/jobs/",
        "/api/jobs/{job_id}/failed-customers/",
    ):
        ref = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        name = ref["schema"]["$ref"].rsplit("/", 1)[1]
        assert name.startswith("Paginated"), path
        assert {"count", "next", "previous", "results"} <= set(
            schema["components"]["schemas"][name]["properties"]
        )


def test_schema_needs_no_login(api):
    assert api.get(reverse("api:schema")).status_code == 200


def test_swagger_ui_is_served_from_local_static_files(client):
    page = client.get(reverse("api:docs")).content.decode()
    assert reverse("api:schema") in page
    assert "drf_spectacular_sidecar/swagger-ui-dist" in page
    assert "cdn." not in page
