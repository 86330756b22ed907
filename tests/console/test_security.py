"""Injected markup cannot run (a Content-Security-Policy with no inline script, and no page
that needs one), and guessing passwords or API tokens is slowed down per address."""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import BatchFactory, CustomerFactory

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)


def address() -> str:
    """An address of its own for each test, so failures counted by one never reach another."""
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}-{uuid.uuid4().hex[:6]}"


def test_every_answer_forbids_inline_and_foreign_scripts(client, importer):
    client.force_login(importer)
    for url in (reverse("admin:index"), "/api/batches/"):
        policy = client.get(url)["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]*)", policy).group(1).split()
        assert script_src == ["'self'"], policy
        assert "frame-ancestors 'none'" in policy


def test_the_console_pages_need_no_inline_script(client, admin_client, importer):
    batch = BatchFactory(created_by=importer)
    customer = CustomerFactory(batch=batch)
    login = client.get(reverse("admin:login")).content.decode()
    assert not INLINE_SCRIPT.findall(login)
    pages = [
        reverse("admin:index"),
        reverse("admin:customers_stagingbatch_changelist"),
        reverse("admin:customers_stagingbatch_change", args=[batch.pk]),
        reverse("admin:customers_stagingbatch_import"),
        reverse("admin:customers_stagedcustomer_change", args=[customer.pk]),
        reverse("admin:customers_customerproblem_changelist"),
        reverse("admin:migrations_jobs_migrationjob_changelist"),
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert not INLINE_SCRIPT.findall(response.content.decode()), url


def sign_in(client, username: str, password: str, remote: str):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": reverse("admin:index")},
        REMOTE_ADDR=remote,
    )


def test_failed_sign_ins_lock_the_account_from_that_address_only(client, importer, settings):
    settings.CONSOLE_SIGNIN_FAILURES = 3
    importer.set_password("right-password")
    importer.save()
    here, elsewhere = address(), address()

    for _ in range(3):
        assert sign_in(client, importer.username, "wrong", here).status_code == 200
    locked = sign_in(client, importer.username, "right-password", here)

    assert locked.status_code == 200
    assert "Too many failed sign-ins from this address" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    assert sign_in(client, importer.username, "right-password", elsewhere).status_code == 302


def test_a_successful_sign_in_clears_the_accounts_failures(client, importer, settings):
    settings.CONSOLE_SIGNIN_FAILURES = 3
    importer.set_password("right-password")
    importer.save()
    here = address()
    for _ in range(2):
        sign_in(client, importer.username, "wrong", here)
    assert sign_in(client, importer.username, "right-password", here).status_code == 302
    client.logout()

    for _ in range(2):
        sign_in(client, importer.username, "wrong", here)
    assert sign_in(client, importer.username, "right-password", here).status_code == 302


def test_wrong_api_tokens_from_one_address_get_429_then_wait(importer, settings):
    settings.CONSOLE_TOKEN_FAILURES = 3
    here, elsewhere = address(), address()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    for _ in range(3):
        assert api.get("/api/batches/", REMOTE_ADDR=here).status_code == 401

    refused = api.get("/api/batches/", REMOTE_ADDR=here)

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    token = Token.objects.create(user=importer)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/batches/", REMOTE_ADDR=here).status_code == 429
    assert api.get("/api/batches/", REMOTE_ADDR=elsewhere).status_code == 200
