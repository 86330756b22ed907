"""The production settings as a deployment would run them: Django's deployment checklist
passes without a warning, and the settings refuse what must never reach production."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings

from tests.reliability.conftest import figure

PRODUCTION = "config.settings.production"
HOST = "console.example.com"


def run(args: list[str], tmp_path, **env: str) -> subprocess.CompletedProcess:
    """A management command or a program under the production settings, as deployed:
    nothing but the environment configures it."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "MASIVO_", "MIGRATION_", "SANDBOX_"))
    }
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": PRODUCTION,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
            "DJANGO_ALLOWED_HOSTS": HOST,
            "MIGRATION_VAR_DIR": str(tmp_path / "var"),
            "MASIVO_API_KEY": "not-used-by-the-checks",
        }
    )
    environment.update(env)
    return subprocess.run(
        [sys.executable, *args],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_deployment_checklist_passes_without_a_warning(tmp_path):
    done = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], tmp_path)

    output = (done.stdout + done.stderr).strip()
    figure("deploy_check", returncode=done.returncode, output=output[-500:])
    assert done.returncode == 0, output
    assert "System check identified no issues" in output, output


@pytest.mark.parametrize(
    ("env", "refusal"),
    [
        ({"DJANGO_DEBUG": "1"}, "DJANGO_DEBUG must be off in production."),
        ({"DJANGO_SECRET_KEY": "short"}, "at least 50 characters"),
        ({"DJANGO_SECRET_KEY": "django-insecure-" + "x" * 60}, "at least 50 characters"),
    ],
    ids=["debug", "short key", "insecure key"],
)
def test_production_settings_refuse_to_start_unsafe(env, refusal, tmp_path):
    done = run(["manage.py", "check"], tmp_path, **env)

    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert refusal in done.stderr


SHOW = """
import django
django.setup()
from django.conf import settings
from django.urls import Resolver404, resolve
try:
    resolve("/sandbox/auth/authorize")
    print("sandbox mounted")
except Resolver404:
    print("no sandbox")
print("debug", settings.DEBUG)
print("secure cookies", settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE)
print("hosts", settings.ALLOWED_HOSTS)
"""


def test_production_mounts_no_sandbox_and_keeps_cookies_secure(tmp_path):
    done = run(["-c", SHOW], tmp_path)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == [
        "no sandbox",
        "debug False",
        "secure cookies True True",
        f"hosts ['{HOST}']",
    ], done.stdout


PROXY = """
import django
django.setup()
from django.conf import settings
print(getattr(settings, "SECURE_PROXY_SSL_HEADER", None))
"""


@pytest.mark.parametrize(
    ("env", "header"),
    [
        ({}, "None"),
        ({"DJANGO_BEHIND_PROXY": "1"}, "('HTTP_X_FORWARDED_PROTO', 'https')"),
    ],
    ids=["no proxy named: the header is not trusted", "behind a proxy"],
)
def test_x_forwarded_proto_is_trusted_only_behind_a_named_proxy(env, header, tmp_path):
    done = run(["-c", PROXY], tmp_path, **env)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == header
