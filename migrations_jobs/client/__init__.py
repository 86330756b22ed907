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

Modules: ``masivo`` (the client), ``results`` (outcomes and results), ``tokens`` (expiry,
refresh, the shared token), ``headers`` (rate-limit headers and backoff), ``redaction``,
``transport`` (deadlines and the moment a request left). The package exports what the
rest of the console uses; the modules' own constants are imported from them.
"""

from migrations_jobs.client.headers import backoff_delay
from migrations_jobs.client.masivo import MasivoClient
from migrations_jobs.client.redaction import redact
from migrations_jobs.client.results import (
    SEND_ERRORS,
    MasivoAuthError,
    SendFenced,
    SendOutcome,
    SendResult,
)

__all__ = [
    "SEND_ERRORS",
    "MasivoAuthError",
    "MasivoClient",
    "SendFenced",
    "SendOutcome",
    "SendResult",
    "backoff_delay",
    "redact",
]
