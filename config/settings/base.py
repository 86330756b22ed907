"""Settings shared by every environment, all read from the environment.

Nothing here needs a server: with no variables set the console uses a SQLite file and
Celery's filesystem transport under ``var/``.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from console.ids import ID_SCHEMA

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
env.read_env(BASE_DIR / ".env")

# Where the embedded defaults keep their files (SQLite, broker queue, uploads).
VAR_DIR = BASE_DIR / env.str("MIGRATION_VAR_DIR", default="var")
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Behind a proxy that terminates TLS: trust its X-Forwarded-Proto and X-Forwarded-For
# (only then: a client could send them itself).
BEHIND_PROXY = env.bool("DJANGO_BEHIND_PROXY", default=False)
# Scripts and styles from the console's own files only (no inline script).
CONSOLE_CONTENT_SECURITY_POLICY = env.str(
    "CONSOLE_CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
)
# Failed sign-ins for one account from one address before it must wait (an address may
# fail five times as often over all accounts), and how long the failures count.
CONSOLE_SIGNIN_FAILURES = env.int("CONSOLE_SIGNIN_FAILURES", default=5)
CONSOLE_SIGNIN_LOCKOUT_S = env.int("CONSOLE_SIGNIN_LOCKOUT_S", default=15 * 60)
# Wrong API tokens from one address in that time before the API answers 429.
CONSOLE_TOKEN_FAILURES = env.int("CONSOLE_TOKEN_FAILURES", default=20)
# Where operators reach the console; used in links sent by email.
CONSOLE_BASE_URL = env.str("CONSOLE_BASE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "import_export",
    "customers",
    "migrations_jobs",
    "migrations_jobs.sandbox",
]

MIDDLEWARE = [
    "migrations_jobs.sandbox.middleware.SandboxArrivalMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "console.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'console.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web server and worker share the file: wait for the lock instead of failing at once,
    # and let readers run beside the one writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("es", _("Spanish"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Uploads: files bigger than this are refused with a message before they are read.
MIGRATION_UPLOAD_MAX_BYTES = env.int("MIGRATION_UPLOAD_MAX_BYTES", default=200 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# The limit is kept while the request's body arrives: nothing beyond it is written.
FILE_UPLOAD_HANDLERS = [
    "customers.upload_handlers.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Workbooks (XLSX): the longest text a cell may hold (the largest real one is a metadata
# JSON), and the most rows a sheet may have (Excel's own limit).
MIGRATION_XLSX_MAX_CELL_BYTES = env.int("MIGRATION_XLSX_MAX_CELL_BYTES", default=64 * 1024)
MIGRATION_XLSX_MAX_ROWS = env.int("MIGRATION_XLSX_MAX_ROWS", default=1_048_576)

EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="migration-console@localhost")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# --- django-import-export ---------------------------------------------------------------
# Uploaded files wait between preview and confirm in the default storage, so the web
# process that confirms (or a worker that stages in the background) need not be the one
# that received the upload.
IMPORT_EXPORT_TMP_STORAGE_CLASS = "import_export.tmp_storages.MediaStorage"
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "import"
IMPORT_EXPORT_SKIP_ADMIN_LOG = True

# --- Django REST framework ----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "console.security.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "migrations_jobs.api.exceptions.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Masivo Migration Console API",
    "DESCRIPTION": "Stage, validate, approve and submit customer migrations to Masivo.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from the package's own static files: the console works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Ids in addresses (``<id:...>``): integers the database's keys can hold.
    "PATH_CONVERTER_OVERRIDES": {"id": ID_SCHEMA},
    # Request bodies as components of their own: what a request must hold (a non-blank
    # string, a file as binary) is not what an answer holds.
    "COMPONENT_SPLIT_REQUEST": True,
    # Several serializers have a "status" or an "outcome": one named enum per state machine.
    "ENUM_NAME_OVERRIDES": {
        "BatchStatusEnum": "customers.models.StagingBatch.Status",
        "JobStatusEnum": "migrations_jobs.models.MigrationJob.Status",
        "CustomerOutcomeEnum": "customers.models.Outcome",
    },
}

# Shared between processes (and hosts, with Redis): the Masivo token and its refresh lock.
# Never the database: secrets are not stored there.
if env.str("CACHE_URL", default=""):
    CACHES = {"default": env.cache("CACHE_URL")}
elif env.str("CELERY_BROKER_URL", default="").startswith("redis"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env.str("CELERY_BROKER_URL"),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
else:
    # Longer than the longest countdown a task is re-enqueued with, so Redis never
    # redelivers a message that is merely waiting for its turn.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# How often beat publishes the jobs sweep (expired leases, stalled jobs).
MIGRATION_SWEEP_S = env.float("MIGRATION_SWEEP_S", default=10.0)
CELERY_BEAT_SCHEDULE = {
    # Picks up any job whose wake-up message was lost (a broker restart, a flushed queue).
    "migration-jobs-sweep": {
        "task": "migrations_jobs.tasks.jobs_sweep",
        "schedule": MIGRATION_SWEEP_S,
    },
}

# --- Masivo (see CONTRACT.md) ---------------------------------------------------------------
MASIVO_SANDBOX = env.bool("MASIVO_SANDBOX", default=False)
_sandbox_base = env.str("MASIVO_SANDBOX_URL", default="http://127.0.0.1:8000/sandbox")
MASIVO_BASE_URL = env.str(
    "MASIVO_BASE_URL",
    default=f"{_sandbox_base}/api/storefront/v1"
    if MASIVO_SANDBOX
    else "https://app.masivo.ai/api/storefront/v1",
)
MASIVO_AUTH_URL = env.str(
    "MASIVO_AUTH_URL",
    default=f"{_sandbox_base}/auth/authorize"
    if MASIVO_SANDBOX
    else "https://api.masivo.ai/auth/authorize",
)
# Secrets: read from the environment only, never stored, logged or shown.
MASIVO_API_KEY = env.str("MASIVO_API_KEY", default="")
MASIVO_TOKEN = env.str("MASIVO_TOKEN", default="")
MASIVO_CONNECT_TIMEOUT_S = env.float("MASIVO_CONNECT_TIMEOUT_S", default=5.0)
MASIVO_READ_TIMEOUT_S = env.float("MASIVO_READ_TIMEOUT_S", default=60.0)
MASIVO_TOTAL_TIMEOUT_S = env.float("MASIVO_TOTAL_TIMEOUT_S", default=90.0)
MASIVO_TOKEN_REFRESH_MARGIN_S = env.int("MASIVO_TOKEN_REFRESH_MARGIN_S", default=300)
# Names the Masivo account the console sends to: the console sends a customer id to an
# account at most once, and remembers it per account. Defaults to the migrate endpoint's
# base URL (scheme, host and path, lower-cased host, no trailing slash); set it when one
# URL serves several accounts (a development and a production API key, say).
MASIVO_ACCOUNT = env.str("MASIVO_ACCOUNT", default="")

# The contract's open points, as settings with CONTRACT.md's defaults.
MASIVO_REQUIRED_FIELDS = env.list(
    "MASIVO_REQUIRED_FIELDS", default=["name", "email", "registration_date"]
)
MASIVO_GENDERS = env.list("MASIVO_GENDERS", default=["MALE", "FEMALE", "OTHER"])
MASIVO_STATUSES = env.list("MASIVO_STATUSES", default=["ACTIVE", "INACTIVE"])
MASIVO_DEVICE_PLATFORMS = env.list("MASIVO_DEVICE_PLATFORMS", default=["ios", "android", "web"])
# History (CONTRACT.md, "History: transactions and events"): what is assumed is a setting.
# A transaction's fields required beyond the customer's id, and its types.
MASIVO_TX_REQUIRED_FIELDS = env.list(
    "MASIVO_TX_REQUIRED_FIELDS", default=["reward_id", "type", "amount"]
)
MASIVO_TX_TYPES = env.list(
    "MASIVO_TX_TYPES",
    default=["ACCUMULATION", "REDEMPTION", "EXPIRATION", "MIGRATION", "TRANSFER", "REVERSAL"],
)
MASIVO_PAYMENT_METHODS = env.list(
    "MASIVO_PAYMENT_METHODS", default=["CREDIT", "DEBIT", "CASH", "BANK_TRANSFER", "OTHER"]
)
# One request: at most this many transactions (events) in all, and customers.
MASIVO_TX_MAX_ITEMS = env.int("MASIVO_TX_MAX_ITEMS", default=1000)
MASIVO_TX_MAX_CUSTOMERS = env.int("MASIVO_TX_MAX_CUSTOMERS", default=1000)
MASIVO_EVENTS_MAX_ITEMS = env.int("MASIVO_EVENTS_MAX_ITEMS", default=1000)
MASIVO_EVENTS_MAX_CUSTOMERS = env.int("MASIVO_EVENTS_MAX_CUSTOMERS", default=1000)
# Seconds between the last customers request and the first history request: Masivo
# queues customers, and their history must not arrive first.
MASIVO_HISTORY_DELAY_S = env.float("MASIVO_HISTORY_DELAY_S", default=60.0)

# --- Migration jobs --------------------------------------------------------------------------
MIGRATION_CHUNK_SIZE = min(env.int("MIGRATION_CHUNK_SIZE", default=1000), 1000)
MIGRATION_MIN_INTERVAL_S = env.float("MIGRATION_MIN_INTERVAL_S", default=5.0)
MIGRATION_HOURLY_CAP = env.int("MIGRATION_HOURLY_CAP", default=250)
MIGRATION_MAX_ATTEMPTS = env.int("MIGRATION_MAX_ATTEMPTS", default=8)
MIGRATION_BACKOFF_BASE_S = env.float("MIGRATION_BACKOFF_BASE_S", default=2.0)
MIGRATION_BACKOFF_MAX_S = env.float("MIGRATION_BACKOFF_MAX_S", default=300.0)
# How long a worker holds a chunk without renewing its lease: the worker renews it every
# quarter of that while it works on the chunk (the request's own timeouts bound a stuck
# request), so a worker that dies costs at most this long, plus a sweep.
MIGRATION_LEASE_S = env.float("MIGRATION_LEASE_S", default=20.0)
# A chunk whose request may have reached Masivo unacknowledged (a timeout after the body
# left, a 5xx, a worker lost mid-request): "resend" sends it again (its customers may then
# arrive twice, and are marked so); "hold" keeps it for an operator's decision.
MIGRATION_UNKNOWN_OUTCOME = env.str("MIGRATION_UNKNOWN_OUTCOME", default="resend")
if MIGRATION_UNKNOWN_OUTCOME not in ("resend", "hold"):
    raise ImproperlyConfigured("MIGRATION_UNKNOWN_OUTCOME must be resend or hold.")
MIGRATION_MAX_IN_FLIGHT = env.int("MIGRATION_MAX_IN_FLIGHT", default=2)
# The host part of a worker's lease names (default: the host name). A chunk held by a
# process of this host that no longer exists is taken back at once; give every machine
# (or container sharing a host name) a name of its own.
MIGRATION_WORKER_HOST = env.str("MIGRATION_WORKER_HOST", default="")
MIGRATION_FOUR_EYES = env.bool("MIGRATION_FOUR_EYES", default=True)
MIGRATION_NOTIFY_EMAILS = env.list("MIGRATION_NOTIFY_EMAILS", default=[])
MIGRATION_BACKGROUND_IMPORT_ROWS = env.int("MIGRATION_BACKGROUND_IMPORT_ROWS", default=20_000)
MIGRATION_IMPORT_PREVIEW_ROWS = env.int("MIGRATION_IMPORT_PREVIEW_ROWS", default=20)
# Staging a file at least this big (bytes), from a path or bytes, runs the contract's check
# of each row ahead in a forked process while this one checks across rows and writes
# (customers.resources.ahead): about a quarter less time on two cores. 0: never.
MIGRATION_STAGING_CHECK_AHEAD_BYTES = env.int(
    "MIGRATION_STAGING_CHECK_AHEAD_BYTES", default=4 * 1024 * 1024
)

# --- Sandbox (a local stand-in for Masivo, mounted when MASIVO_SANDBOX is on) -----------------
SANDBOX_API_KEY = env.str("SANDBOX_API_KEY", default="sandbox-api-key")
SANDBOX_TOKEN_LIFETIME_S = env.int("SANDBOX_TOKEN_LIFETIME_S", default=3600)
SANDBOX_RATE_INTERVAL_S = env.float("SANDBOX_RATE_INTERVAL_S", default=0.0)
# What the limiter counts: "arrival" (when a request reached the server) or "processing".
SANDBOX_RATE_CLOCK = env.str("SANDBOX_RATE_CLOCK", default="arrival")
SANDBOX_HOURLY_CAP = env.int("SANDBOX_HOURLY_CAP", default=0)
SANDBOX_FAIL_500_RATE = env.float("SANDBOX_FAIL_500_RATE", default=0.0)
SANDBOX_FAIL_429_RATE = env.float("SANDBOX_FAIL_429_RATE", default=0.0)
SANDBOX_SLOW_RATE = env.float("SANDBOX_SLOW_RATE", default=0.0)
SANDBOX_SLOW_S = env.float("SANDBOX_SLOW_S", default=0.0)
# Each migrate request arrives up to this much later (a uniform draw), as over a network.
SANDBOX_LATENCY_JITTER_S = env.float("SANDBOX_LATENCY_JITTER_S", default=0.0)
SANDBOX_RETRY_AFTER_S = env.int("SANDBOX_RETRY_AFTER_S", default=1)
# Refuse (422) transactions or events for a customer id customers/migrate has not brought.
SANDBOX_REFUSE_HISTORY_FIRST = env.bool("SANDBOX_REFUSE_HISTORY_FIRST", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
