"""Settings for the test suite. DATABASE_URL and CELERY_BROKER_URL still apply."""

import os

os.environ.setdefault("MIGRATION_VAR_DIR", "var/test")

from .base import *  # noqa: E402

SECRET_KEY = "test-only-insecure-key"  # noqa: S105
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MASIVO_SANDBOX = True
# Every request of the suite comes from one address: the tests of these limits set them.
CONSOLE_SIGNIN_FAILURES = 1000
CONSOLE_TOKEN_FAILURES = 1000
# The sandbox applies what it accepts at once; the tests of the wait set their own.
MASIVO_HISTORY_DELAY_S = float(os.environ.get("MASIVO_HISTORY_DELAY_S", "0"))

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a Celery worker process started by a test shares it; one
    # file per test run so concurrent runs on one machine never collide, except when a
    # quick run reuses the last one (``make test T=...``).
    _name = "test-reuse" if os.environ.get("MIGRATION_TEST_DB_REUSE") else f"test-{os.getpid()}"
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"{_name}.sqlite3")}
