"""A Spanish-headed export mapped in the browser: the operator maps the split name and the
coded values, saves the mapping as a profile and stages the file; the next file with the
same columns opens already mapped, and stages as it is."""

import pytest
from django.contrib.auth.models import Permission

from customers.models import MappingProfile, StagedCustomer, StagingBatch
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PERMS = (
    "import_stagingbatch",
    "add_stagingbatch",
    "change_stagingbatch",
    "view_stagingbatch",
    "view_stagedcustomer",
    "add_mappingprofile",
    "view_mappingprofile",
)
TIMEOUT_MS = 30_000
GENDERS = {"H": "MALE", "M": "FEMALE", "O": "OTHER"}
STATUSES = {"A": "ACTIVE", "I": "INACTIVE"}


def _log_in(browser, base_url: str):
    context = browser.new_context(locale="en-US", viewport={"width": 1440, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", "ana")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


def _upload(page, base_url: str, batch: StagingBatch, path) -> None:
    page.goto(f"{base_url}/admin/customers/stagingbatch/import/?batch={batch.pk}")
    if not page.locator("#id_resource").count():
        raise AssertionError(page.inner_text("#content"))
    page.select_option("#id_resource", label="customers")
    page.set_input_files("#id_import_file", str(path))
    page.click("#import-form input[type=submit]")
    page.wait_for_selector("#mapping-form")


def _value_select(page, field: str, value: str):
    return page.locator(f'[data-values-for="{field}"]').get_by_label(value, exact=True)


def test_a_spanish_export_is_mapped_in_the_browser_and_its_profile_remembered(
    browser, live_server, samples, screens
):
    user = UserFactory(username="ana")
    user.user_permissions.add(*Permission.objects.filter(codename__in=PERMS))
    first = StagingBatch.objects.create(name="es-1", created_by=user, time_zone="America/Bogota")
    second = StagingBatch.objects.create(name="es-2", created_by=user, time_zone="America/Bogota")
    clientes = samples / "legacy-es" / "clientes.csv"
    page = _log_in(browser, live_server.url)

    _upload(page, live_server.url, first, clientes)
    # Certain columns are chosen already; the rest is the operator's.
    assert page.input_value("#id_col__email") == "Correo"
    page.select_option("#id_join__name", "Apellidos")
    page.check("#id_lower__email")
    for code, value in GENDERS.items():
        _value_select(page, "gender", code).select_option(value)
    # Choosing the column shows its values at once, without a reload.
    page.select_option("#id_col__status", "")
    assert _value_select(page, "status", "A").count() == 0
    page.select_option("#id_col__status", "Estado")
    for code, value in STATUSES.items():
        _value_select(page, "status", code).select_option(value)
    page.fill("#id_fmt__registration_date", "%d/%m/%Y %H:%M:%S")
    page.fill("#id_fmt__metrics_updated_at", "%d/%m/%Y %H:%M:%S")
    page.fill("#id_save_as", "CRM clientes")
    page.screenshot(path=str(screens / "mapping-step.png"), full_page=True)
    page.click("#mapping-preview")
    page.wait_for_load_state()
    page.screenshot(path=str(screens / "mapping-preview.png"), full_page=True)
    assert page.locator("input[name=confirm]").count() == 1, page.inner_text("#content")[:3000]
    page.click("input[name=confirm]")
    page.wait_for_load_state()
    assert page.locator("ul.messagelist").count(), page.content()[:5000]

    john = StagedCustomer.objects.get(batch=first, legacy_id="legacy-000123")
    assert (john.name, john.email, john.gender) == ("John Smith", "jsmith@example.com", "MALE")
    assert john.registration_date.isoformat() == "2023-11-07T05:31:56+00:00"
    profile = MappingProfile.objects.get(name="CRM clientes")

    # The same columns again: the profile maps them, values included.
    _upload(page, live_server.url, second, clientes)
    assert profile.name in page.inner_text(".console-note")
    assert page.input_value("#id_join__name") == "Apellidos"
    assert _value_select(page, "gender", "M").input_value() == "FEMALE"
    page.click("#mapping-preview")
    page.wait_for_selector("input[name=confirm]")
    page.click("input[name=confirm]")
    page.wait_for_selector("ul.messagelist")
    assert StagedCustomer.objects.filter(batch=second).count() == 12
