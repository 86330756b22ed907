"""Mapping profiles through the API, and files staged with a mapping."""

import json

import pytest
from django.urls import reverse

from customers.models import MappingProfile, StagedCustomer
from tests.factories import BatchFactory, UserFactory

pytestmark = pytest.mark.django_db

DOCUMENT = {
    "kind": "customers",
    "fields": {
        "id": "Código",
        "email": {"column": "Correo", "lower": True},
        "name": "Nombre",
        "registration_date": "Alta",
    },
    "unmapped": "ignore",
}
CLIENTES = "Código;Nombre;Correo;Alta;Notas\nC-1;Ana;ANA@example.com;2024-01-01;vip\n".encode()
MANAGE = [
    "customers.view_mappingprofile",
    "customers.add_mappingprofile",
    "customers.change_mappingprofile",
    "customers.delete_mappingprofile",
]


@pytest.fixture
def mapper(db):
    return UserFactory(username="mapper", perms=MANAGE)


def test_a_profile_is_created_read_replaced_and_deleted(as_user, mapper):
    api = as_user(mapper)

    created = api.post(
        reverse("api:mapping-list"), {"name": "crm", "document": DOCUMENT}, format="json"
    )
    assert created.status_code == 201, created.json()
    assert created.json()["kind"] == "customers"
    assert created.json()["created_by"] == "mapper"
    url = reverse("api:mapping-detail", args=[created.json()["id"]])

    assert api.get(url).json()["document"] == DOCUMENT
    changed = {**DOCUMENT, "unmapped": "refuse"}
    assert (
        api.put(url, {"name": "crm 2", "document": changed}, format="json").json()["name"]
        == "crm 2"
    )
    assert [p["name"] for p in api.get(reverse("api:mapping-list")).json()["results"]] == ["crm 2"]
    assert api.delete(url).status_code == 204
    assert not MappingProfile.objects.exists()


def test_a_profile_with_mistakes_is_refused_with_every_one_listed(as_user, mapper):
    bad = {"kind": "customers", "fields": {"dob": {"column": "x", "date_fromat": "%d"}}}

    response = as_user(mapper).post(
        reverse("api:mapping-list"), {"name": "bad", "document": bad}, format="json"
    )

    assert response.status_code == 400
    assert "date_fromat" in response.json()["details"]
    assert "“id”" in response.json()["details"]
    assert not MappingProfile.objects.exists()


def test_profiles_need_their_permissions(as_user, nobody):
    api = as_user(nobody)

    assert api.get(reverse("api:mapping-list")).status_code == 403
    assert (
        api.post(
            reverse("api:mapping-list"), {"name": "x", "document": DOCUMENT}, format="json"
        ).status_code
        == 403
    )


def test_a_file_stages_with_a_mapping_given_as_json_or_by_profile_name(as_user, importer, upload):
    api = as_user(importer)
    batch = BatchFactory(created_by=importer)

    response = upload(
        api, batch.pk, "customers", "clientes.csv", CLIENTES, mapping=json.dumps(DOCUMENT)
    )
    assert response.status_code == 201, response.json()
    assert response.json()["mapping"] == DOCUMENT
    assert StagedCustomer.objects.get(batch=batch).email == "ana@example.com"

    MappingProfile.objects.create(name="crm", kind="customers", document=DOCUMENT)
    other = BatchFactory(created_by=importer)
    response = upload(api, other.pk, "customers", "clientes.csv", CLIENTES, mapping="crm")
    assert response.status_code == 201, response.json()


def test_a_foreign_file_without_a_mapping_is_refused_with_a_suggested_one(
    as_user, importer, upload
):
    batch = BatchFactory(created_by=importer)

    response = upload(as_user(importer), batch.pk, "customers", "clientes.csv", CLIENTES)

    assert response.status_code == 400
    body = response.json()
    assert "“Notas”" in body["details"] or any("“Notas”" in m for m in body["fields"]["file"])
    assert body["suggested_mapping"]["fields"]["id"] == "Código"


def test_an_unknown_profile_name_is_a_field_error(as_user, importer, upload):
    batch = BatchFactory(created_by=importer)

    response = upload(as_user(importer), batch.pk, "customers", "c.csv", CLIENTES, mapping="nope")

    assert response.status_code == 400
    assert "mapping" in response.json()["fields"]


def test_the_schema_documents_the_mapping_format(client, importer):
    client.force_login(importer)

    schema = client.get(reverse("api:schema"), {"format": "json"}).json()

    document = schema["components"]["schemas"]["MappingProfile"]["properties"]["document"]
    assert document["properties"]["kind"]["enum"] == [
        "customers",
        "balances",
        "devices",
        "metrics",
        "transactions",
        "events",
    ]
    rule = document["properties"]["fields"]["additionalProperties"]["oneOf"][1]
    assert {"join", "split", "values", "date_format", "timezone"} <= set(rule["properties"])
