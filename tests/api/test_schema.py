import re

import pytest
from django.urls import URLPattern, reverse
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token

from console.ids import ID_MAX, ID_SCHEMA
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
        path = "/api/" + re.sub(r"<id:(\w+)>", r"{\1}", str(pattern.pattern))
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
    assert len(expected) == 26
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


def test_the_schema_and_docs_need_a_login(api, client):
    response = api.get(reverse("api:schema"), {"format": "json"})
    assert (response.status_code, response.json()["error"]) == (401, "not_authenticated")
    docs = client.get(reverse("api:docs"))
    assert docs.status_code == 302
    assert docs["Location"] == f"{reverse('admin:login')}?next={reverse('api:docs')}"


def test_the_schema_and_docs_are_open_under_debug(api, client, settings):
    settings.DEBUG = True
    assert api.get(reverse("api:schema")).status_code == 200
    assert client.get(reverse("api:docs")).status_code == 200


def test_the_schema_is_served_to_a_token(api, importer):
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=importer).key}")
    assert api.get(reverse("api:schema"), {"format": "json"}).status_code == 200


def test_swagger_ui_is_served_from_local_static_files(client, importer):
    client.force_login(importer)
    page = client.get(reverse("api:docs")).content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist" in page
    assert "cdn." not in page
    # Its own script is a file too (no inline script, as the security policy asks).
    script = client.get(reverse("api:docs"), {"script": ""}).content.decode()
    assert reverse("api:schema") in script


def test_who_may_be_missing_is_declared_nullable(schema):
    components = schema["components"]["schemas"]
    for component, field in [
        ("Batch", "last_imported_by"),
        ("Batch", "validated_by"),
        ("Batch", "approved_by"),
        ("Job", "cancelled_by"),
    ]:
        assert components[component]["properties"][field]["nullable"] is True, (component, field)


def test_lists_document_a_refused_parameter_and_a_page_past_the_last(schema):
    for path, operations in schema["paths"].items():
        parameters = {
            p["name"]: p["schema"] for p in operations.get("get", {}).get("parameters", [])
        }
        if "page" not in parameters:
            continue
        assert {"400", "404"} <= set(operations["get"]["responses"]), path
        assert (parameters["page"]["minimum"], parameters["page_size"]["maximum"]) == (1, 1000)


def test_ids_are_declared_within_the_range_of_the_keys(schema):
    job = schema["paths"]["/api/jobs/"]["get"]["parameters"]
    assert next(p for p in job if p["name"] == "batch")["schema"]["maximum"] == ID_MAX
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert parameter["schema"] == ID_SCHEMA, path
