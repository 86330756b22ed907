"""No secret leaves the client: not the API key, not a bearer token Masivo issued.

A whole job runs with DEBUG logging in the worker and in the web process (the live server
that serves the sandbox, and the test client), through every path that writes something
down: a 500, a 429, a 401 that makes the client fetch a new token, an answer that comes
too late, and tokens that live two seconds. Then the worker's log, the web process's log,
every text of every table of the database, every admin page of the console's models, every
API answer and every stored attempt excerpt are searched for the key and for each token
the sandbox issued (whole, and the signature part alone).
"""

from __future__ import annotations

import logging
import uuid

import pytest
from django.contrib import admin
from django.db import connection
from django.urls import URLPattern, reverse
from rest_framework.test import APIClient

from customers.models import MappingProfile
from migrations_jobs.api import urls as api_urls
from migrations_jobs.client import MasivoClient
from migrations_jobs.models import ChunkAttempt
from migrations_jobs.sandbox import services as sandbox_services
from migrations_jobs.sandbox.services import sandbox_arrivals, sandbox_configure, sandbox_script
from migrations_jobs.services import job_start
from tests.factories import UserFactory
from tests.reliability.conftest import figure
from tests.worker import approved_batch, job_wait

pytestmark = pytest.mark.worker

CONSOLE_APPS = ("customers", "migrations_jobs", "masivo_sandbox")
PAGES_PER_MODEL = 15


def database_text() -> str:
    """Every value of every row of every table, as text."""
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                parts.append(" ".join(str(value) for value in row))
    return "\n".join(parts)


def admin_pages(client) -> tuple[int, str]:
    """Every page of every model admin of the console, for its latest objects."""
    texts = []
    for model, model_admin in admin.site._registry.items():  # noqa: SLF001 - the registry
        if model._meta.app_label not in CONSOLE_APPS:
            continue
        objects = list(model.objects.order_by("-pk").values_list("pk", flat=True)[:PAGES_PER_MODEL])
        for pattern in model_admin.get_urls():
            if not isinstance(pattern, URLPattern) or not pattern.name:
                continue
            names = set(pattern.pattern.converters)
            if not names <= {"object_id"}:
                continue
            for pk in objects if names else [None]:
                url = reverse(f"admin:{pattern.name}", kwargs={"object_id": pk} if names else {})
                response = client.get(url, follow=True)
                # 403: refused to the superuser too (deleting a submitted row); 405: a
                # page that only takes POST (the import's confirmation).
                assert response.status_code in (200, 403, 405), url
                texts.append(_content(response))
    return len(texts), "\n".join(texts)


def api_answers(user, ids: dict[str, int]) -> tuple[int, str]:
    """Every GET the API offers, for this job and its batch."""
    api = APIClient()
    api.force_authenticate(user)
    texts = []
    for pattern in api_urls.urlpatterns:
        view = getattr(pattern.callback, "view_class", None)
        if "GET" not in getattr(view, "required_permissions", {}):
            continue
        url = reverse(f"api:{pattern.name}", kwargs={n: ids[n] for n in pattern.pattern.converters})
        response = api.get(url)
        assert response.status_code == 200, url
        texts.append(_content(response))
    return len(texts), "\n".join(texts)


def _content(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def test_no_secret_in_logs_database_pages_or_answers(
    start_worker, stager, submitter, settings, caplog, client, monkeypatch
):
    api_key = f"mk-live-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    settings.SANDBOX_API_KEY = api_key
    settings.MASIVO_API_KEY = api_key
    settings.MIGRATION_CHUNK_SIZE = 40
    issued: list[str] = []
    issue = sandbox_services.sandbox_token_issue

    def issue_and_keep(**kwargs) -> str:
        token = issue(**kwargs)
        issued.append(token)
        return token

    monkeypatch.setattr(sandbox_services, "sandbox_token_issue", issue_and_keep)
    caplog.set_level(logging.DEBUG)
    batch = approved_batch(creator=stager, approver=submitter, size=400, prefix="secret")
    sandbox_configure(token_lifetime_s=2)
    for status, retry_after, delay in ((500, None, 0), (429, 1, 0), (401, None, 0), (201, None, 1)):
        sandbox_script(status_code=status, retry_after_s=retry_after, delay_s=delay)
    MasivoClient().clear_cached_token()
    worker = start_worker(
        loglevel="DEBUG",
        DJANGO_LOG_LEVEL="DEBUG",
        MASIVO_API_KEY=api_key,
        MIGRATION_MIN_INTERVAL_S=0.3,
        MASIVO_READ_TIMEOUT_S=0.5,
        MASIVO_TOTAL_TIMEOUT_S=1.0,
    )

    job = job_wait(job=job_start(batch=batch, user=submitter), worker=worker, timeout_s=60)

    superuser = UserFactory(username="root", is_superuser=True)
    client.force_login(superuser)
    page_count, pages = admin_pages(client)
    profile = MappingProfile.objects.create(
        name="crm", kind="customers", document={"kind": "customers", "fields": {"id": "Código"}}
    )
    answer_count, answers = api_answers(
        superuser, {"batch_id": batch.pk, "job_id": job.pk, "profile_id": profile.pk}
    )
    excerpts = "\n".join(
        f"{error} {excerpt}"
        for error, excerpt in ChunkAttempt.objects.values_list("error_class", "response_excerpt")
    )
    places = {
        "worker log": worker.log(),
        "web log": caplog.text,
        "database": database_text(),
        "admin pages": pages,
        "api answers": answers,
        "attempt excerpts": excerpts,
    }
    secrets = {"api key": api_key}
    for number, token in enumerate(issued, start=1):
        secrets[f"token {number}"] = token
        secrets[f"token {number} signature"] = token.rsplit(".", 1)[-1]
    leaks = sorted(
        f"{secret} in {place}"
        for place, text in places.items()
        for secret, value in secrets.items()
        if value in text
    )
    statuses = sandbox_arrivals()["status_counts"]
    figures = figure(
        "secrets",
        tokens_issued=len(issued),
        secrets_searched=len(secrets),
        admin_pages=page_count,
        api_answers=answer_count,
        worker_log_lines=places["worker log"].count("\n"),
        web_log_records=len(caplog.records),
        database_chars=len(places["database"]),
        answered=statuses,
        leaks=leaks,
    )
    assert job.status == job.Status.SUCCEEDED, figures
    # Every path ran: refused, limited, unauthorized, too late; and tokens were renewed.
    assert {500, 429, 401} <= set(statuses), figures
    assert len(issued) >= 2, figures
    assert page_count >= 30, figures
    assert "DEBUG" in places["worker log"], figures
    assert any(r.levelno == logging.DEBUG for r in caplog.records), figures
    assert leaks == [], figures
