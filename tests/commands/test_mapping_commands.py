"""Mapping files by command: stage with one, save and export profiles, and the suggested
mapping written next to a file in another shape."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from customers.models import MappingProfile, StagedCustomer, StagingBatch

pytestmark = pytest.mark.django_db

CLIENTES = "Código;Nombre;Apellidos;Correo;Alta\nC-1;Ana;García;ANA@example.com;2024-01-01\n"
DOCUMENT = {
    "kind": "customers",
    "fields": {
        "id": "Código",
        "name": {"join": ["Nombre", "Apellidos"]},
        "email": {"column": "Correo", "lower": True},
        "registration_date": "Alta",
    },
}


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def files(tmp_path):
    (tmp_path / "clientes.csv").write_text(CLIENTES, encoding="utf-8")
    (tmp_path / "clientes-map.json").write_text(json.dumps(DOCUMENT), encoding="utf-8")
    return tmp_path


def test_stage_file_reads_a_file_through_a_mapping_file(files, importer):
    out, _err = run(
        "stage_file", "spring", "customers", str(files / "clientes.csv"),
        "--user", "importer", "--mapping", str(files / "clientes-map.json"),
    )  # fmt: skip

    assert "Staged 1 customers" in out
    customer = StagedCustomer.objects.get(batch__name="spring")
    assert (customer.name, customer.email) == ("Ana García", "ana@example.com")


def test_a_foreign_file_without_mapping_is_refused_and_a_suggestion_is_written(files, importer):
    err = StringIO()
    with pytest.raises(CommandError):
        call_command(
            "stage_file", "spring", "customers", str(files / "clientes.csv"),
            "--user", "importer", stderr=err, stdout=StringIO(),
        )  # fmt: skip

    assert "“Apellidos”" in err.getvalue()
    suggested = json.loads((files / "clientes.suggested-mapping.json").read_text())
    assert suggested["fields"]["email"] == "Correo"
    assert "Apellidos" not in json.dumps(suggested["fields"])
    assert not StagingBatch.objects.filter(name="spring").exists()


def test_a_profile_is_imported_used_by_name_and_exported(files, importer):
    imported = ("mapping_import", str(files / "clientes-map.json"), "--name", "crm")
    out, _err = run(*imported, "--user", "importer")
    assert "Saved mapping profile “crm” (customers)" in out
    # Importing again updates the profile of that name.
    out, _err = run(*imported, "--user", "importer")
    assert "Updated" in out

    run(
        "stage_file",
        "spring",
        "customers",
        str(files / "clientes.csv"),
        "--user",
        "importer",
        "--mapping",
        "crm",
    )
    assert MappingProfile.objects.get(name="crm").last_used_at is not None

    run("mapping_export", "crm", str(files / "out.json"))
    assert json.loads((files / "out.json").read_text()) == DOCUMENT


def test_a_mapping_file_with_mistakes_is_not_saved(files, importer):
    bad = files / "bad.json"
    bad.write_text(json.dumps({"kind": "customers", "fields": {"id": {"colum": "Código"}}}))
    err = StringIO()

    with pytest.raises(CommandError, match="1 problem"):
        call_command(
            "mapping_import", str(bad), "--user", "importer", stderr=err, stdout=StringIO()
        )

    assert "“colum”" in err.getvalue()
    assert not MappingProfile.objects.exists()


def test_an_unknown_mapping_name_is_refused(files, importer):
    with pytest.raises(CommandError, match="nope"):
        run(
            "stage_file",
            "spring",
            "customers",
            str(files / "clientes.csv"),
            "--user",
            "importer",
            "--mapping",
            "nope",
        )


def test_a_refused_file_can_be_written_back_with_its_problems(files, importer):
    bad = files / "bad.csv"
    bad.write_text("id,name,email,registration_date\nc1,Ann,not-an-email,2024-01-01\n")

    with pytest.raises(CommandError):
        run(
            "stage_file", "spring", "customers", str(bad), "--user", "importer",
            "--errors-file", str(files / "bad-errors.csv"),
        )  # fmt: skip

    lines = (files / "bad-errors.csv").read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "id,name,email,registration_date,errors"
    assert lines[1].startswith("c1,Ann,not-an-email,2024-01-01,email: ")
