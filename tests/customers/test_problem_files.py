"""The batch's problems written back into the files they came from, to fix offline."""

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from customers.models import StagingBatch, StagingUpload
from customers.problem_files import batch_problem_files
from customers.services import batch_validate
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CLIENTES = (
    "Código;Nombre;Correo;Alta\n"
    "C-1;Ana;ana@example.com;2024-01-01\n"
    "C-2;Luis;not-an-email;2024-01-02\n"
    "C-3;Eva;eva@example.com;2024-01-03\n"
)
MAPPING = {
    "kind": "customers",
    "fields": {"id": "Código", "name": "Nombre", "email": "Correo", "registration_date": "Alta"},
}


@pytest.fixture
def batch(tmp_path, importer) -> StagingBatch:
    (tmp_path / "clientes.csv").write_text(CLIENTES, encoding="utf-8")
    (tmp_path / "map.json").write_text(json.dumps(MAPPING), encoding="utf-8")
    call_command(
        "stage_file", "spring", "customers", str(tmp_path / "clientes.csv"),
        "--user", "importer", "--mapping", str(tmp_path / "map.json"), "--on-problems", "flag",
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip
    batch = StagingBatch.objects.get(name="spring")
    batch_validate(batch=batch, user=importer)
    return batch


def test_every_staged_file_is_kept_with_who_staged_it_and_its_mapping(batch, importer):
    upload = StagingUpload.objects.get(batch=batch)

    assert (upload.file_name, upload.kind, upload.status) == ("clientes.csv", "customers", "staged")
    assert upload.created_by == importer
    assert upload.mapping_document == MAPPING
    assert upload.staged == {"customers": 3}


def test_the_problems_list_hands_back_the_file_with_each_rows_problems(batch, client):
    reader = UserFactory(perms=["customers.view_stagingbatch", "customers.view_stagedcustomer"])
    client.force_login(reader)
    page = client.get(
        reverse("admin:customers_customerproblem_changelist"), {"batch__id__exact": batch.pk}
    )
    [item] = page.context["problem_files"]
    assert item.kind_problem_count == 1
    assert batch_problem_files(batch=batch) == [item]

    response = client.get(
        reverse("admin:customers_customerproblem_file", args=[item.upload.pk, "csv"])
    )

    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Código", "Nombre", "Correo", "Alta", "errors"]
    assert rows[1][-1] == rows[3][-1] == ""
    assert rows[2][:3] == ["C-2", "Luis", "not-an-email"]
    assert rows[2][-1].startswith("Correo: ")


def test_the_file_with_problems_is_written_in_the_readers_language(batch, client):
    client.force_login(UserFactory(perms=["customers.view_stagedcustomer"]))
    upload = StagingUpload.objects.get(batch=batch)

    response = client.get(
        reverse("admin:customers_customerproblem_file", args=[upload.pk, "csv"]),
        HTTP_ACCEPT_LANGUAGE="es",
    )

    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[2][-1] == "Correo: “not-an-email” no es una dirección de correo electrónico válida."


def test_the_file_with_problems_needs_the_permission_to_see_customers(batch, client):
    client.force_login(UserFactory(perms=["customers.view_stagingbatch"]))
    upload = StagingUpload.objects.get(batch=batch)

    page = client.get(
        reverse("admin:customers_customerproblem_changelist"), {"batch__id__exact": batch.pk}
    )
    response = client.get(reverse("admin:customers_customerproblem_file", args=[upload.pk, "csv"]))

    assert page.status_code == 403  # the problems quote customers' values too
    assert response.status_code == 403
