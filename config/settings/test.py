"""Settings for the test suite. DATABASE_URL and CELERY_BROKER_URL still apply."""

import os

os.environ.setdefault("MIGRATION_VAR_DIR", "var/test")

from .base import *  # noqa: E402

SECRET_KEY = "test-only-insecure-key"  # noqa: S105
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MASIVO_SANDBOX = True
