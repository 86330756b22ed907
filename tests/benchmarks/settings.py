# ruff: noqa: F405
"""Settings for the benchmarks: production-like (no debug), the built-in sandbox as Masivo,
every file under ``var/bench``. ``DATABASE_URL`` and ``CELERY_BROKER_URL`` still apply."""

import os

os.environ.setdefault("MIGRATION_VAR_DIR", "var/bench")
os.environ.setdefault("MASIVO_SANDBOX", "1")

from config.settings.base import *  # noqa: E402, F403

SECRET_KEY = "bench-only-insecure-key"  # noqa: S105
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The console's URLs, plus an admin site for the django-import-export reference resources.
ROOT_URLCONF = "tests.benchmarks.urls"
if not (MASIVO_API_KEY or MASIVO_TOKEN):
    MASIVO_API_KEY = SANDBOX_API_KEY
LOGGING["root"]["level"] = env.str("DJANGO_LOG_LEVEL", default="WARNING")
