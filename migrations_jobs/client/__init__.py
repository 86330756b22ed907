"""The Masivo HTTP client: one ``customers/migrate`` request per call, typed results.

The client never sleeps for backoff and never retries, except once after a 401 with a fresh
token: the caller decides what to do with a :class:`SendResult`. Every request has a connect
timeout, a read timeout (per socket read) and a total deadline for the whole exchange.

Tokens come from ``MASIVO_TOKEN`` (static) or from the auth endpoint with ``MASIVO_API_KEY``;
fetched tokens are kept in Django's default cache, shared by every process (and host, with
Redis), until ``MASIVO_TOKEN_REFRESH_MARGIN_S`` before their ``exp``. One process refreshes
at a time, behind a cache lock; the others wait briefly and read the new token.

Secrets (the API key and every token) never appear in a repr, a log line, an exception
message or a response excerpt: see :func:`redact`.

Modules: ``masivo`` (the client), ``results`` (outcomes and results), ``tokens``,
``headers`` (rate-limit headers and backoff), ``redaction``, ``transport`` (deadlines and
the moment a request left). Import from the package.
"""

from migrations_jobs.client.headers import (
    ERR_BACKOFF_ATTEMPT,
    ERR_BACKOFF_NEGATIVE,
    backoff_delay,
    ratelimit_headers,
    retry_after_seconds,
)
from migrations_jobs.client.masivo import (
    EXCERPT_CHARS,
    MIGRATE_PATH,
    USER_AGENT,
    MasivoClient,
)
from migrations_jobs.client.redaction import (
    JWT_PATTERN,
    REDACTED,
    Secret,
    redact,
)
from migrations_jobs.client.results import (
    ERR_AUTH_NO_DATA,
    ERR_AUTH_NOT_JSON,
    ERR_AUTH_STATUS,
    ERR_NO_CREDENTIALS,
    NOTE_AUTH_REQUEST_FAILED,
    SEND_ERRORS,
    MasivoAuthError,
    SendFenced,
    SendOutcome,
    SendResult,
    outcome_for_error,
    outcome_for_status,
)
from migrations_jobs.client.tokens import (
    CACHE_KEY_PREFIX,
    DEFAULT_TOKEN_LIFETIME_S,
    MIN_TOKEN_CACHE_S,
    SHORT_TOKEN_REFRESH_FRACTION,
    TOKEN_LOCK_TIMEOUT_S,
    TOKEN_WAIT_FIRST_SLEEP_S,
    TOKEN_WAIT_MAX_SLEEP_S,
    TOKEN_WAIT_S,
    token_expiry,
    token_refresh_at,
)
from migrations_jobs.client.transport import (
    BODY_READ_LIMIT,
    MIN_SOCKET_TIMEOUT_S,
    TOTAL_TIMEOUT_MESSAGE,
    DeadlineTimeouts,
    Departure,
    RawAnswer,
    TotalTimeout,
    deadline_error,
)

__all__ = [
    "BODY_READ_LIMIT",
    "CACHE_KEY_PREFIX",
    "DEFAULT_TOKEN_LIFETIME_S",
    "DeadlineTimeouts",
    "Departure",
    "ERR_AUTH_NOT_JSON",
    "ERR_AUTH_NO_DATA",
    "ERR_AUTH_STATUS",
    "ERR_BACKOFF_ATTEMPT",
    "ERR_BACKOFF_NEGATIVE",
    "ERR_NO_CREDENTIALS",
    "EXCERPT_CHARS",
    "JWT_PATTERN",
    "MIGRATE_PATH",
    "MIN_SOCKET_TIMEOUT_S",
    "MIN_TOKEN_CACHE_S",
    "MasivoAuthError",
    "SendFenced",
    "MasivoClient",
    "NOTE_AUTH_REQUEST_FAILED",
    "REDACTED",
    "RawAnswer",
    "SEND_ERRORS",
    "SHORT_TOKEN_REFRESH_FRACTION",
    "Secret",
    "SendOutcome",
    "SendResult",
    "TOKEN_LOCK_TIMEOUT_S",
    "TOKEN_WAIT_FIRST_SLEEP_S",
    "TOKEN_WAIT_MAX_SLEEP_S",
    "TOKEN_WAIT_S",
    "TOTAL_TIMEOUT_MESSAGE",
    "TotalTimeout",
    "USER_AGENT",
    "backoff_delay",
    "deadline_error",
    "outcome_for_error",
    "outcome_for_status",
    "ratelimit_headers",
    "redact",
    "retry_after_seconds",
    "token_expiry",
    "token_refresh_at",
]
