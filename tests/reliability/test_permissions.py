"""Every door of the console asks for its permission, and the four-eyes rule holds at each.

The admin's pages are found by walking the URLs of every model admin of the console's apps,
and the API's endpoints by walking its URL patterns and the permissions each view declares,
so a page or endpoint added later is covered without editing this file.
"""

from __future__ import annotations

import importlib
import uuid

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import RequestFactory
from django.urls import URLPattern, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import (
    CustomerProblem,
    MappingProfile,
    StagedCustomer,
    StagingBatch,
    StagingUpload,
)
from customers.services import (
    CUSTOMER_DATA_PERMISSION,
    ERR_APPROVE_OWN_BATCH,
    batch_transition,
    batch_validate,
    upload_check,
    upload_create,
    upload_stage,
)
from migrations_jobs.api import urls as api_urls
from migrations_jobs.models import ChunkAttempt, JobChunk, MigrationJob, SendAgain
from migrations_jobs.sandbox.models import (
    SandboxConfig,
    SandboxCustomer,
    SandboxHistoryEntry,
    SandboxRequest,
    SandboxTokenRequest,
)
from migrations_jobs.sandbox.services import sandbox_script
from migrations_jobs.services import job_start
from tests.customers.importing import stage
from tests.factories import UserFactory
from tests.reliability.conftest import figure
from tests.worker import approved_batch, broker_purge, validated_batch

pytestmark = pytest.mark.django_db

CONSOLE_APPS = ("customers", "migrations_jobs", "masivo_sandbox")
CUSTOMERS_FILE = b"id,name,email,registration_date\n{id},Someone,{id}@example.com,2023-11-07\n"


def console_permissions() -> list[str]:
    return [
        f"{app}.{codename}"
        for app, codename in Permission.objects.filter(
            content_type__app_label__in=CONSOLE_APPS
        ).values_list("content_type__app_label", "codename")
    ]


def user_with(perms: list[str], *, name: str | None = None):
    return UserFactory(username=name or f"user-{uuid.uuid4().hex[:8]}", perms=perms)


@pytest.fixture
def world(db, settings):
    """One of everything the pages and endpoints show: a submitted batch with a job, its
    chunk and attempt, a send-again decision, a validated batch, an upload, a problem,
    sandbox records."""
    settings.MIGRATION_CHUNK_SIZE = 2
    creator = user_with([], name="creator")
    operator = user_with(
        ["customers.approve_stagingbatch", "customers.submit_stagingbatch"], name="operator"
    )
    sent = approved_batch(creator=creator, approver=operator, size=4, prefix="perm")
    job = job_start(batch=sent, user=operator)
    broker_purge()
    chunk = job.chunks.order_by("sequence").first()
    ChunkAttempt.objects.create(
        chunk=chunk,
        number=1,
        started_at=timezone.now(),
        outcome=ChunkAttempt.Outcome.RETRY_UNKNOWN,
        status_code=500,
    )
    SendAgain.objects.create(
        batch=sent, job=job, requested_by=operator, reason="checked in Masivo", customer_count=1
    )
    profile = MappingProfile.objects.create(
        name="crm", kind="customers", document={"kind": "customers", "fields": {"id": "Código"}}
    )
    waiting = validated_batch(creator=creator, size=2, prefix="wait")
    customer = StagedCustomer.objects.filter(batch=waiting).first()
    CustomerProblem.objects.create(
        batch=waiting,
        customer=customer,
        legacy_id=customer.legacy_id,
        field="email",
        code=CustomerProblem.Code.INVALID,
        message="invalid",
    )
    upload = StagingUpload(batch=waiting, kind="customers", file_name="f.csv", created_by=creator)
    upload.file.save("f.csv", ContentFile(b"id\n1\n"), save=False)
    upload.save()
    SandboxConfig.current()
    sandbox_script(status_code=500)
    SandboxTokenRequest.objects.create(is_granted=True)
    request = SandboxRequest.objects.create(
        received_at=timezone.now(), status_code=201, reason="accepted", duration_s=0.1
    )
    SandboxCustomer.objects.create(
        legacy_id="perm-x",
        request=request,
        last_request=request,
        first_received_at=timezone.now(),
        last_received_at=timezone.now(),
    )
    SandboxHistoryEntry.objects.create(
        kind="events",
        legacy_id="perm-x",
        item_count=1,
        request=request,
        has_customer=True,
        received_at=timezone.now(),
    )
    return {
        "job": job,
        "chunk": chunk,
        "sent": sent,
        "waiting": waiting,
        "upload": upload,
        "profile": profile,
        "creator": creator,
        "operator": operator,
    }


def state() -> tuple:
    """What an action could change."""
    return (
        sorted(MigrationJob.objects.values_list("pk", "status")),
        sorted(JobChunk.objects.values_list("pk", "status")),
        sorted(StagingBatch.objects.values_list("pk", "status", "customer_count")),
        sorted(StagedCustomer.objects.values_list("pk", "is_excluded", "outcome")),
        StagingUpload.objects.values_list("status", flat=True).get(),
        sorted(MappingProfile.objects.values_list("pk", "name", "document")),
    )


# --- the admin ---------------------------------------------------------------------------------


def slug_values(model_admin, name: str) -> list[str]:
    """Real values for a slug in a custom admin URL (a batch step, a job action)."""
    if name == "step":
        return [step.name for step in getattr(model_admin, "steps", [])]
    if name == "action":
        job_actions = importlib.import_module("migrations_jobs.admin.job_actions")
        return [action.name for action in job_actions.JOB_ACTIONS]
    return ["x"]


def admin_urls(world) -> list[tuple[str, str]]:
    """(model, url) for every URL of every model admin of the console's apps."""
    found = []
    for model, model_admin in admin.site._registry.items():  # noqa: SLF001 - the registry
        if model._meta.app_label not in CONSOLE_APPS:
            continue
        instance = {
            MigrationJob: world["job"],
            JobChunk: world["chunk"],
            StagingBatch: world["waiting"],
            StagingUpload: world["upload"],
        }.get(model) or model.objects.order_by("pk").first()
        object_id = str(instance.pk) if instance else "999999"
        for pattern in model_admin.get_urls():
            if not isinstance(pattern, URLPattern) or not pattern.name:
                continue
            combos = [{}]
            for name in pattern.pattern.converters:
                if name == "object_id":
                    values = [object_id]
                elif name == "upload_id":
                    values = [str(world["upload"].pk)]
                else:
                    values = slug_values(model_admin, name)
                combos = [{**c, name: v} for c in combos for v in values]
            for kwargs in combos:
                found.append((model.__name__, reverse(f"admin:{pattern.name}", kwargs=kwargs)))
    return found


def test_admin_refuses_every_page_and_post_to_a_staff_user_without_permissions(client, world):
    nobody = user_with([], name="nobody")
    client.force_login(nobody)
    before = state()
    urls = admin_urls(world)
    answered = []

    for model, url in urls:
        got = client.get(url, follow=True)
        posted = client.post(url, {"confirm": "yes", "post": "yes"})
        answered.append((model, url, got.status_code, posted.status_code))

    # 405: a page that takes no GET (the import's confirmation) or no POST.
    allowed = [a for a in answered if a[2] not in (403, 405) or a[3] not in (403, 405)]
    figures = figure("permissions[admin pages]", urls=len(urls), not_refused=allowed)
    assert len(urls) >= 40, figures
    assert not allowed, figures
    assert state() == before


def test_admin_shows_no_customer_data_to_a_viewer_without_the_customer_permission(client, world):
    """Viewing batches, jobs and problems is not seeing customers: no page, download or
    file of the admin shows a staged customer's id or email to a user who may view
    everything but staged customers (the dry run, the problems, the job's CSVs...)."""
    viewer = user_with(
        [p for p in console_permissions() if ".view_" in p and p != CUSTOMER_DATA_PERMISSION],
        name="batch-viewer",
    )
    client.force_login(viewer)
    customers = StagedCustomer.objects.values_list("legacy_id", "email")
    quoted = {value for customer in customers for value in customer}
    urls = admin_urls(world)
    shown = []

    for model, url in urls:
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        text = body.decode("utf-8", errors="replace")
        found = sorted(value for value in quoted if value in text)
        if found:
            shown.append((model, url, response.status_code, found[:3]))

    figures = figure("permissions[customer data in the admin]", urls=len(urls), shown=shown)
    assert len(urls) >= 40, figures
    assert not shown, figures


def test_admin_actions_and_steps_refuse_a_viewer(client, world):
    """A user who may see everything but do nothing: every bulk action and every step of
    the batch and job pages is refused, and nothing changes."""
    viewer = user_with([p for p in console_permissions() if ".view_" in p], name="viewer")
    superuser = UserFactory(username="root", is_superuser=True)
    client.force_login(viewer)
    before = state()
    tried = []

    factory = RequestFactory()
    for model, model_admin in admin.site._registry.items():  # noqa: SLF001
        if model._meta.app_label not in CONSOLE_APPS:
            continue
        request = factory.get("/")
        request.user = superuser
        names = [n for n in model_admin.get_actions(request) if n != "delete_selected"]
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for name in names:
            ids = list(model.objects.values_list("pk", flat=True))
            response = client.post(
                changelist, {"action": name, "_selected_action": ids, "index": 0}
            )
            tried.append((model.__name__, name, response.status_code))
    for step in admin.site._registry[StagingBatch].steps:  # noqa: SLF001
        for batch in (world["waiting"], world["sent"]):
            url = reverse("admin:customers_stagingbatch_step", args=[batch.pk, step.name])
            tried.append(("step", step.name, client.post(url).status_code))
    for url in (
        reverse("admin:customers_stagingbatch_import"),
        reverse(
            "admin:customers_stagingbatch_upload", args=[world["waiting"].pk, world["upload"].pk]
        ),
    ):
        tried.append(("import", url, client.post(url).status_code))

    figures = figure("permissions[admin actions]", tried=len(tried))
    assert len(tried) >= 10, figures
    assert all(code in (200, 302, 403) for *_name, code in tried), tried
    assert [t for t in tried if t[0] in ("step", "import") and t[2] != 403] == [], tried
    assert state() == before, tried


# --- the API -----------------------------------------------------------------------------------


def api_endpoints(world) -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, url, permissions) for every method every API view declares. The schema
    and its docs declare none: they are public by design (tests/api/test_schema.py)."""
    ids = {
        "batch_id": world["waiting"].pk,
        "job_id": world["job"].pk,
        "profile_id": world["profile"].pk,
    }
    found = []
    for pattern in api_urls.urlpatterns:
        view = getattr(pattern.callback, "view_class", None)
        required = getattr(view, "required_permissions", None)
        if required is None:
            continue
        kwargs = {name: ids[name] for name in pattern.pattern.converters}
        url = reverse(f"api:{pattern.name}", kwargs=kwargs)
        for method, perms in required.items():
            found.append((method, url, perms))
    return found


def test_api_refuses_anonymous_and_every_missing_permission(world):
    endpoints = api_endpoints(world)
    everything = console_permissions()
    lacking_users = {}
    refused = []
    before = state()

    for method, url, perms in endpoints:
        anonymous = APIClient()
        answer = getattr(anonymous, method.lower())(url, {}, format="json")
        refused.append((method, url, "anonymous", answer.status_code, 401))
        for missing in perms:
            if missing not in lacking_users:
                lacking_users[missing] = user_with([p for p in everything if p != missing])
            client = APIClient()
            client.force_authenticate(lacking_users[missing])
            answer = getattr(client, method.lower())(url, {}, format="json")
            refused.append((method, url, missing, answer.status_code, 403))
            if answer.status_code == 403:
                assert missing in answer.json()["details"]

    wrong = [r for r in refused if r[3] != r[4]]
    figures = figure("permissions[api]", checks=len(refused), endpoints=len(endpoints), wrong=wrong)
    assert len(endpoints) >= 18, figures
    assert not wrong, figures
    assert state() == before


# --- the four-eyes rule ------------------------------------------------------------------------

APPROVER_PERMS = [
    "customers.approve_stagingbatch",
    "customers.import_stagingbatch",
    "customers.view_stagingbatch",
    "customers.change_stagingbatch",
    "customers.add_stagingbatch",
    "customers.view_stagedcustomer",
    "customers.change_stagedcustomer",
]


def approve_everywhere(batch: StagingBatch, user, client) -> dict[str, str]:
    """Try to approve ``batch`` as ``user`` through the admin step, the API and the
    command; what each answered."""
    client.force_login(user)
    url = reverse("admin:customers_stagingbatch_step", args=[batch.pk, "approve"])
    page = client.post(url, follow=True)
    admin_says = " ".join(str(m) for m in page.context["messages"])
    api = APIClient()
    api.force_authenticate(user)
    answer = api.post(reverse("api:batch-approve", args=[batch.pk]))
    api_says = f"{answer.status_code} {answer.json().get('details', '')}"
    try:
        call_command("batch_approve", str(batch.pk), user=user.get_username())
        command_says = "approved"
    except CommandError as error:
        command_says = str(error)
    return {"admin": admin_says, "api": api_says, "command": command_says}


def assert_refused_everywhere(batch: StagingBatch, said: dict[str, str]) -> None:
    rule = str(ERR_APPROVE_OWN_BATCH % {"batch": batch.name})
    assert rule in said["admin"], said
    assert said["api"] == f"403 {rule}", said
    assert said["command"] == rule, said
    batch.refresh_from_db()
    assert batch.status == StagingBatch.Status.VALIDATED
    assert batch.approved_by is None


def test_creator_cannot_approve_own_batch_through_any_door(client, db):
    creator = user_with(APPROVER_PERMS, name="creator-approver")
    batch = validated_batch(creator=creator, size=3, prefix="own")

    said = approve_everywhere(batch, creator, client)

    figure("four_eyes[creator]", **said)
    assert_refused_everywhere(batch, said)


@pytest.mark.parametrize("door", ["admin import", "api upload"])
def test_last_importer_cannot_approve_through_any_door(door, client, db):
    creator = user_with([], name="creator")
    importer = user_with(APPROVER_PERMS, name="importer-approver")
    batch = validated_batch(creator=creator, size=2, prefix="imp")
    content = CUSTOMERS_FILE.replace(b"{id}", b"imp-999")
    if door == "admin import":
        client.force_login(importer)
        assert stage(client, batch, "customers", "more.csv", content).status_code == 302
    else:
        api = APIClient()
        api.force_authenticate(importer)
        answer = api.post(
            reverse("api:batch-files", args=[batch.pk]),
            {"kind": "customers", "file": ContentFile(content, name="more.csv")},
            format="multipart",
        )
        assert answer.status_code == 201, answer.json()
    batch_validate(batch=batch, user=creator)
    batch.refresh_from_db()
    assert batch.status == StagingBatch.Status.VALIDATED

    said = approve_everywhere(batch, importer, client)

    figure(f"four_eyes[last importer, {door}]", **said)
    assert_refused_everywhere(batch, said)


def test_another_user_can_approve_and_only_once(client, db):
    """The rule refuses the stager, not everyone: a second person approves."""
    creator = user_with(APPROVER_PERMS, name="creator")
    reviewer = user_with(APPROVER_PERMS, name="reviewer")
    batch = validated_batch(creator=creator, size=2, prefix="ok")

    said = approve_everywhere(batch, reviewer, client)

    batch.refresh_from_db()
    assert batch.status == StagingBatch.Status.APPROVED
    assert batch.approved_by == reviewer
    assert "is approved" in said["admin"], said
    assert said["api"].startswith("409"), said  # already approved by the admin step
    assert "only a validated batch can be approved" in said["command"], said


def test_an_earlier_importer_cannot_approve_rows_they_staged(client, db):
    creator = user_with([], name="creator")
    first = user_with(APPROVER_PERMS, name="first-importer")
    second = user_with(APPROVER_PERMS, name="second-importer")
    batch = validated_batch(creator=creator, size=1, prefix="gap")
    batch_transition(pk=batch.pk, to=StagingBatch.Status.DRAFT)
    batch.refresh_from_db()
    for user, legacy_id in ((first, b"gap-a"), (second, b"gap-b")):
        api = APIClient()
        api.force_authenticate(user)
        answer = api.post(
            reverse("api:batch-files", args=[batch.pk]),
            {
                "kind": "customers",
                "file": ContentFile(CUSTOMERS_FILE.replace(b"{id}", legacy_id), name="f.csv"),
            },
            format="multipart",
        )
        assert answer.status_code == 201
    batch_validate(batch=batch, user=creator)

    said = approve_everywhere(batch, first, client)

    assert_refused_everywhere(batch, said)


def test_the_confirmer_of_a_background_file_cannot_approve_through_any_door(client, db):
    """Another person uploaded the file; confirming it put its rows into the batch."""
    creator = user_with([], name="creator")
    uploader = user_with([], name="uploader")
    confirmer = user_with(APPROVER_PERMS, name="confirmer")
    batch = validated_batch(creator=creator, size=1, prefix="bg")
    content = CUSTOMERS_FILE.replace(b"{id}", b"bg-999")
    upload = upload_create(
        batch=batch, kind="customers", file_name="big.csv", content=content, user=uploader
    )
    upload_check(upload_id=upload.pk)
    client.force_login(confirmer)
    url = reverse("admin:customers_stagingbatch_upload", args=[batch.pk, upload.pk])
    assert client.post(url).status_code == 302
    upload_stage(upload_id=upload.pk)
    assert batch_validate(batch=batch, user=creator).is_validated

    said = approve_everywhere(batch, confirmer, client)

    figure("four_eyes[background file confirmer]", **said)
    assert_refused_everywhere(batch, said)


def test_an_editor_of_staged_rows_cannot_approve_their_change(client, db):
    creator = user_with([], name="creator")
    editor = user_with(APPROVER_PERMS, name="editor")
    batch = validated_batch(creator=creator, size=1, prefix="edit")
    customer = batch.customers.get()
    client.force_login(editor)
    url = reverse("admin:customers_stagedcustomer_change", args=[customer.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "batch"}
    data.pop("registration_date", None)
    data.update(
        {
            "email": "someone-else@example.com",
            "metadata": "",
            "registration_date_0": "2023-11-07",
            "registration_date_1": "05:31:56",
        }
    )
    for prefix in ("balances", "devices", "metrics"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    assert client.post(url, data).status_code == 302
    assert batch_validate(batch=batch, user=creator).is_validated

    said = approve_everywhere(batch, editor, client)

    assert_refused_everywhere(batch, said)
