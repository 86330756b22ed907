"""Settings for ``make run`` on one machine: debug on, the sandbox as Masivo."""

import os

os.environ.setdefault("MASIVO_SANDBOX", "1")

from .base import *  # noqa: E402

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = SECRET_KEY or "local-only-insecure-key-do-not-use-in-production"  # noqa: S105
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
# The sandbox allows everything; a short interval keeps the demo quick.
MIGRATION_MIN_INTERVAL_S = env.float("MIGRATION_MIN_INTERVAL_S", default=0.5)
MIGRATION_HOURLY_CAP = env.int("MIGRATION_HOURLY_CAP", default=0)
# The sandbox applies what it accepts at once: the history need not wait a minute for it.
MASIVO_HISTORY_DELAY_S = env.float("MASIVO_HISTORY_DELAY_S", default=2.0)

if MASIVO_SANDBOX and not (MASIVO_API_KEY or MASIVO_TOKEN):
    MASIVO_API_KEY = SANDBOX_API_KEY
