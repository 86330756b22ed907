"""A command runs as the user its ``--user`` names, and asks of that user what the API's
endpoint for the same action asks: the same permissions, refused with the same words and
exit status 1. A batch argument that is a number (or ``id:NUMBER``) is an id, never a
name, and no batch may be named so."""

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command, get_commands, load_command_class
from django.urls import reverse
from rest_framework.test import APIClient

from customers.management.arguments import (
    ERR_UNKNOWN_BATCH_ID,
    ERR_USER_PERMISSION,
    batch_from_argument,
)
from customers.models import MappingProfile, StagingBatch
from customers.services import CUSTOMER_DATA_PERMISSION
from migrations_jobs.api import urls as api_urls
from migrations_jobs.api.permissions import ERR_MISSING_PERMISSION
from tests.factories import BatchFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
Status = StagingBatch.Status
CONSOLE_APPS = ("customers", "migrations_jobs")

# (command, which of its permissions when it declares several, API endpoint, method): the
# same action through both doors.
SAME_ACTION = [
    ("stage_file", None, "batch-list", "POST"),
    ("stage_file", None, "batch-files", "POST"),
    ("batch_validate", None, "batch-validate", "POST"),
    ("batch_dry_run", None, "batch-dry-run", "GET"),
    ("batch_reconcile", None, "batch-reconciliation", "GET"),
    ("batch_approve", None, "batch-approve", "POST"),
    ("batch_submit", None, "batch-submit", "POST"),
    ("send_again", None, "batch-send-again", "POST"),
    ("job_decide", None, "job-held-arrived", "POST"),
    ("job_decide", None, "job-held-send-again", "POST"),
    ("mapping_import", "new", "mapping-list", "POST"),
    ("mapping_import", "existing", "mapping-detail", "PUT"),
]
MAPPING = {"kind": "customers", "fields": {"id": "Código"}}


def command_class(name: str):
    return load_command_class(get_commands()[name], name).__class__


def command_permissions(name: str, which: str | None) -> tuple[str, ...]:
    declared = command_class(name).required_permissions
    return declared[which] if which else declared


def api_pattern(name: str):
    [pattern] = [p for p in api_urls.urlpatterns if p.name == name]
    return pattern


def endpoint_permissions(name: str, method: str) -> tuple[str, ...]:
    return api_pattern(name).callback.view_class.required_permissions[method]


def endpoint_url(name: str) -> str:
    """The endpoint's address, for an id no object has: the permission is checked first."""
    ids = {converter: 999 for converter in api_pattern(name).pattern.converters}
    return reverse(f"api:{name}", kwargs=ids)


def console_commands_with_a_user() -> list[str]:
    """Every command of the console's apps that takes ``--user``."""
    found = []
    for name, app in get_commands().items():
        if app not in CONSOLE_APPS:
            continue
        parser = load_command_class(app, name).create_parser("manage.py", name)
        if any("--user" in action.option_strings for action in parser._actions):  # noqa: SLF001
            found.append(name)
    return sorted(found)


def test_every_command_run_as_a_user_asks_what_the_api_asks():
    with_user = console_commands_with_a_user()

    assert sorted({row[0] for row in SAME_ACTION}) == with_user
    for command, which, endpoint, method in SAME_ACTION:
        assert set(command_permissions(command, which)) == set(
            endpoint_permissions(endpoint, method)
        ), (command, endpoint)


def arguments(command: str, which: str | None, tmp_path) -> list[str]:
    """Arguments that reach the permission check: it comes first, as in the API, so the
    batch or job need not exist."""
    if command == "stage_file":
        (tmp_path / "c.csv").write_text("id\nc-1\n")
        return ["no-such-batch", "customers", str(tmp_path / "c.csv")]
    if command == "mapping_import":
        (tmp_path / "crm.json").write_text(json.dumps(MAPPING))
        if which == "existing":
            MappingProfile.objects.get_or_create(
                name="crm", defaults={"kind": "customers", "document": MAPPING}
            )
        return [str(tmp_path / "crm.json")]
    return {
        "batch_validate": ["no-such-batch"],
        "batch_dry_run": ["no-such-batch", "-"],
        "batch_reconcile": ["no-such-batch"],
        "batch_approve": ["no-such-batch"],
        "batch_submit": ["no-such-batch"],
        "send_again": ["no-such-batch", "--reason", "checked", "--skipped"],
        "job_decide": ["999", "--arrived"],
    }[command]


def all_permissions_but(missing: str) -> list[str]:
    return [
        f"{app}.{codename}"
        for app, codename in Permission.objects.filter(
            content_type__app_label__in=CONSOLE_APPS
        ).values_list("content_type__app_label", "codename")
        if f"{app}.{codename}" != missing
    ]


@pytest.mark.parametrize(
    ("command", "which", "endpoint", "method"),
    SAME_ACTION,
    ids=[f"{row[0]}-{row[2]}" for row in SAME_ACTION],
)
def test_a_user_without_a_permission_is_refused_as_the_api_refuses_them(
    command, which, endpoint, method, tmp_path
):
    for missing in command_permissions(command, which):
        user = UserFactory(username=f"lacks-{missing}", perms=all_permissions_but(missing))
        with pytest.raises(CommandError) as raised:
            call_command(
                command,
                *arguments(command, which, tmp_path),
                "--user",
                user.username,
                stdout=StringIO(),
                stderr=StringIO(),
            )
        api = APIClient()
        api.force_authenticate(user)
        answer = getattr(api, method.lower())(endpoint_url(endpoint))

        assert raised.value.returncode == 1
        assert str(raised.value) == ERR_USER_PERMISSION.format(
            user=user.username, permission=missing
        )
        assert answer.status_code == 403
        assert answer.json()["details"] == ERR_MISSING_PERMISSION % {"permission": missing}


def test_the_dry_run_command_needs_the_permission_to_see_customers(importer, tmp_path):
    batch = BatchFactory(name="spring", created_by=importer, status=Status.VALIDATED)
    CustomerFactory(batch=batch, is_valid=True)
    viewer = UserFactory(username="viewer", perms=["customers.view_stagingbatch"])
    target = tmp_path / "out.jsonl"

    with pytest.raises(CommandError) as raised:
        call_command("batch_dry_run", "spring", str(target), "--user", "viewer", stdout=StringIO())

    assert str(raised.value) == ERR_USER_PERMISSION.format(
        user=viewer.username, permission=CUSTOMER_DATA_PERMISSION
    )
    assert not target.exists()


# --- a batch by its id or its name ---------------------------------------------------------


def test_a_number_or_id_number_names_the_batch_with_that_id_not_a_batch_so_named(importer):
    by_id = BatchFactory(name="spring", created_by=importer)
    # A batch named as a number, from before such names were refused.
    BatchFactory(name=str(by_id.pk), created_by=importer)

    assert batch_from_argument(f"id:{by_id.pk}") == by_id
    assert batch_from_argument(str(by_id.pk)) == by_id
    assert batch_from_argument("spring") == by_id


def test_a_command_on_batch_id_runs_on_that_batch(importer):
    by_id = BatchFactory(name="spring", created_by=importer)
    CustomerFactory(batch=by_id)
    shadow = BatchFactory(name=str(by_id.pk), created_by=importer)
    CustomerFactory(batch=shadow, email="not-an-email")

    out = StringIO()
    call_command("batch_validate", f"id:{by_id.pk}", "--user", "importer", stdout=out)

    by_id.refresh_from_db()
    shadow.refresh_from_db()
    assert (by_id.status, shadow.status) == (Status.VALIDATED, Status.DRAFT)
    assert "Batch “spring” is validated." in out.getvalue()


def test_an_unknown_id_is_refused_as_an_id(importer):
    with pytest.raises(CommandError, match=ERR_UNKNOWN_BATCH_ID.format(id=4242)):
        call_command("batch_validate", "id:4242", "--user", "importer")


@pytest.mark.parametrize("name", ["4242", "id:4242"])
def test_stage_file_never_creates_a_batch_named_as_an_id(importer, samples, name):
    with pytest.raises(CommandError) as raised:
        call_command(
            "stage_file", name, "customers", str(samples / "customers.csv"),
            "--user", "importer", stdout=StringIO(), stderr=StringIO(),
        )  # fmt: skip

    assert str(raised.value) == ERR_UNKNOWN_BATCH_ID.format(id=4242)
    assert not StagingBatch.objects.exists()
