"""The import's mapping step, driven as a browser without JavaScript would: a file in a
CRM's own shape is mapped field by field, values included, previewed, staged, and its
profile pre-maps the next file with the same columns."""

import pytest
from django.urls import reverse

from customers.admin.mapping_form import value_field
from customers.models import MappingProfile, StagedCustomer, StagingUpload
from tests.customers.importing import confirm, preview
from tests.factories import BatchFactory

pytestmark = pytest.mark.django_db

MAPPING_URL = "admin:customers_stagingbatch_import_mapping"
CLIENTES = (
    "Código;Nombre;Apellidos;Correo;Sexo;F. nacimiento;Alta;Notas\n"
    "C-001;Ana;García;ana@example.com;M;31/12/1980;07/11/2023 10:00;vip\n"
    "C-002;Luis;Pérez;luis@example.com;H;01/02/1975;08/11/2023 11:30;\n"
).encode()


@pytest.fixture
def client_in(client, importer):
    client.force_login(importer)
    return client


def _step_data(response, **changes) -> dict:
    """The mapping page's form as the browser would post it, with ``changes``."""
    form = response.context["form"]
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value in (None, False):
            continue
        data[name] = "on" if value is True else value
    if "profile" in data and hasattr(data["profile"], "pk"):
        data["profile"] = data["profile"].pk
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_a_foreign_file_opens_the_mapping_step_with_certain_columns_chosen(client_in):
    batch = BatchFactory()

    response = preview(client_in, batch, "customers", "clientes.csv", CLIENTES)

    assert response.templates[0].name == "admin/customers/stagingbatch/mapping.html"
    form = response.context["form"]
    assert form["col__id"].value() == "Código"
    assert form["col__email"].value() == "Correo"
    assert form["col__dob"].value() == "F. nacimiento"
    assert form["fmt__dob"].value() == "%d/%m/%Y"
    assert form["fmt__registration_date"].value() == "%d/%m/%Y %H:%M"
    assert form["col__gender"].value() == "Sexo"
    # The values of Sexo are listed, with their counts, for mapping.
    gender = next(row for row in form.rows() if row.target.name == "gender")
    assert [(value, count) for value, count, _field in gender.values] == [("M", 1), ("H", 1)]
    assert "“Notas”" in response.content.decode()


def test_the_mapping_is_previewed_staged_and_saved_as_a_profile(client_in):
    batch = BatchFactory()
    step = preview(client_in, batch, "customers", "clientes.csv", CLIENTES)
    data = _step_data(
        step,
        action="preview",
        join__name="Apellidos",
        save_as="CRM clientes",
        **{value_field("gender", "M"): "FEMALE", value_field("gender", "H"): "MALE"},
    )

    response = client_in.post(reverse(MAPPING_URL), data)

    assert response.status_code == 200
    result = response.context["result"]
    assert result.messages() == []
    assert result.staged == {"customers": 2}
    assert response.context["confirm_form"] is not None
    staged = confirm(client_in, response)
    assert staged.status_code == 302
    ana = StagedCustomer.objects.get(batch=batch, legacy_id="C-001")
    assert (ana.name, ana.gender, ana.dob.date().isoformat()) == (
        "Ana García",
        "FEMALE",
        "1980-12-31",
    )
    profile = MappingProfile.objects.get(name="CRM clientes")
    assert profile.document["fields"]["gender"]["values"] == {"M": "FEMALE", "H": "MALE"}
    assert profile.last_used_at is not None

    # A second file with the same columns is pre-mapped with the profile.
    again = preview(client_in, BatchFactory(), "customers", "otra.csv", CLIENTES)
    assert again.context["profile"] == profile
    assert again.context["form"]["join__name"].value() == "Apellidos"
    assert again.context["form"][value_field("gender", "M")].value() == "FEMALE"


def test_a_required_field_left_unmapped_stops_at_the_step(client_in):
    batch = BatchFactory()
    step = preview(client_in, batch, "customers", "clientes.csv", CLIENTES)

    response = client_in.post(reverse(MAPPING_URL), _step_data(step, action="preview", col__id=""))

    assert response.templates[0].name == "admin/customers/stagingbatch/mapping.html"
    assert any("“id”" in p for p in response.context["problems"])
    assert StagedCustomer.objects.count() == 0


def test_a_value_left_unmapped_is_a_row_problem_at_preview(client_in):
    batch = BatchFactory()
    step = preview(client_in, batch, "customers", "clientes.csv", CLIENTES)
    data = _step_data(
        step,
        action="preview",
        **{value_field("gender", "M"): "FEMALE", value_field("gender", "H"): ""},
    )

    response = client_in.post(reverse(MAPPING_URL), data)

    assert response.context["result"].has_errors()
    problems = response.context["result"].problems
    assert [(p.row, p.column) for p in problems] == [(3, "Sexo")]
    assert response.context.get("confirm_form") is None


def test_changing_a_column_shows_its_values_without_javascript(client_in):
    batch = BatchFactory()
    step = preview(client_in, batch, "customers", "clientes.csv", CLIENTES)

    response = client_in.post(
        reverse(MAPPING_URL), _step_data(step, action="refresh", col__gender="Notas")
    )

    gender = next(row for row in response.context["form"].rows() if row.target.name == "gender")
    assert ("vip", 1) in [(value, count) for value, count, _field in gender.values]


def test_a_file_in_the_kinds_own_columns_skips_the_step(client_in, samples):
    batch = BatchFactory()

    response = preview(
        client_in, batch, "customers", "customers.csv", (samples / "customers.csv").read_bytes()
    )

    assert response.context["confirm_form"] is not None


def test_a_big_mapped_file_goes_to_a_worker_with_its_mapping(client_in, settings):
    settings.MIGRATION_BACKGROUND_IMPORT_ROWS = 1
    batch = BatchFactory()
    step = preview(client_in, batch, "customers", "clientes.csv", CLIENTES)
    data = _step_data(
        step,
        action="preview",
        **{value_field("gender", "M"): "FEMALE", value_field("gender", "H"): "MALE"},
    )

    response = client_in.post(reverse(MAPPING_URL), data)

    assert response.status_code == 302
    upload = StagingUpload.objects.get(batch=batch)
    assert upload.mapping_document["fields"]["gender"]["values"] == {"M": "FEMALE", "H": "MALE"}


def test_a_column_of_no_field_asks_for_a_mapping_and_is_listed_as_unused(client_in):
    content = b"id,name,favourite_colour\nc1,Ann,blue\n"

    response = preview(client_in, BatchFactory(), "customers", "c.csv", content)

    assert response.context["form"]["col__id"].value() == "id"
    assert response.context["unused"] == ["favourite_colour"]


def test_the_preview_hands_back_the_file_with_its_problems_to_fix_offline(client_in):
    batch = BatchFactory()
    step = preview(client_in, batch, "customers", "clientes.csv", CLIENTES)
    data = _step_data(step, action="preview", **{value_field("gender", "M"): "FEMALE"})
    page = client_in.post(reverse(MAPPING_URL), data)
    state = page.context["error_file"]

    response = client_in.post(
        reverse("admin:customers_stagingbatch_import_errors"), {**state, "as_format": "csv"}
    )

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="clientes-errors.csv"'
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "Código;Nombre;Apellidos;Correo;Sexo;F. nacimiento;Alta;Notas;errors"
    assert lines[1].endswith(";")  # Ana's row is fine
    assert "Sexo: “H” is not among the mapped values" in lines[2]


def test_change_the_mapping_goes_back_to_the_step_as_it_was(client_in):
    batch = BatchFactory()
    step = preview(client_in, batch, "customers", "clientes.csv", CLIENTES)
    data = _step_data(step, action="preview", join__name="Apellidos")
    page = client_in.post(reverse(MAPPING_URL), data)

    back = client_in.post(
        reverse(MAPPING_URL),
        {
            **page.context["mapping_state"],
            "document_json": page.context["mapping_json"],
            "action": "back",
        },
    )

    form = back.context["form"]
    assert form["join__name"].value() == "Apellidos"
    assert form["col__email"].value() == "Correo"
