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
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import hashlib
import json
import logging
import math
import random
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
from django.conf import settings
from django.core.cache import BaseCache, caches

logger = logging.getLogger("migrations_jobs.client")

REDACTED = "[redacted]"
EXCERPT_CHARS = 500
# Only the excerpt is kept, so at most this much of an answer's body is read.
BODY_READ_LIMIT = 64 * 1024
# Smallest socket timeout handed to the transport once the deadline is (almost) reached.
MIN_SOCKET_TIMEOUT_S = 0.001

CACHE_KEY_PREFIX = "masivo:token:"
# How long the refresh lock lives if its holder dies, and how long others wait for it.
TOKEN_LOCK_TIMEOUT_S = 10
TOKEN_WAIT_S = 10.0
TOKEN_WAIT_FIRST_SLEEP_S = 0.02
TOKEN_WAIT_MAX_SLEEP_S = 0.25
# A token whose lifetime is shorter than the refresh margin is refreshed at this fraction.
SHORT_TOKEN_REFRESH_FRACTION = 0.8
# Kept at least this long, so a token with a skewed ``exp`` does not cause a fetch per call.
MIN_TOKEN_CACHE_S = 1.0
# CONTRACT.md: "the token lives one hour"; used when a token carries no readable ``exp``.
DEFAULT_TOKEN_LIFETIME_S = 3600.0

USER_AGENT = "masivo-migration-console"
MIGRATE_PATH = "/customers/migrate"
TOTAL_TIMEOUT_MESSAGE = "The request took longer than MASIVO_TOTAL_TIMEOUT_S."

ERR_NO_CREDENTIALS = "Neither MASIVO_TOKEN nor MASIVO_API_KEY is set: no way to authenticate."
ERR_AUTH_STATUS = "Masivo's token endpoint answered HTTP %(status)s."
ERR_AUTH_NO_DATA = "Masivo's token endpoint answered without a token in “data”."
ERR_AUTH_NOT_JSON = "Masivo's token endpoint answered with a body that is not JSON."
ERR_BACKOFF_ATTEMPT = "attempt must be 1 or more."
ERR_BACKOFF_NEGATIVE = "base and cap must not be negative."
NOTE_AUTH_REQUEST_FAILED = "The token request failed before anything was sent: %(error)s."

# What a request can fail with before an answer is in (InvalidURL is no HTTPError).
SEND_ERRORS = (httpx.HTTPError, httpx.InvalidURL)

JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]*){0,2}")


class SendOutcome(enum.StrEnum):
    """What a ``customers/migrate`` request means for the customers it carried."""

    ACCEPTED = "accepted"
    # Nothing was processed: connect error, connect timeout, 429, 503.
    RETRY_NOT_SENT = "retry_not_sent"
    # The request may have been processed: read timeout, reset after sending, 500, 502, 504.
    RETRY_UNKNOWN = "retry_unknown"
    # Sending the same body again cannot succeed: 400, 401 after a refresh, 403, 404, 422.
    PERMANENT = "permanent"
    # 413: the body must be split.
    TOO_LARGE = "too_large"

    @property
    def is_retryable(self) -> bool:
        return self in (SendOutcome.RETRY_NOT_SENT, SendOutcome.RETRY_UNKNOWN)


@dataclass(frozen=True)
class SendResult:
    """One ``send_customers`` call, as the caller needs it to decide and to record."""

    status_code: int | None
    duration_s: float
    outcome: SendOutcome
    error_class: str = ""
    response_excerpt: str = ""
    retry_after_s: float | None = None
    ratelimit: dict[str, int | float] = field(default_factory=dict)
    # True when a 401 made the client fetch a fresh token and send once more.
    token_refreshed: bool = False
    # When the (last) request began to leave: its headers written, after any connection
    # setup. None when nothing left (no connection, or a transport that reports no writes).
    left_at: dt.datetime | None = None


class MasivoAuthError(Exception):
    """The token endpoint refused or answered nonsense. The message holds no secret."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        is_transient: bool = False,
        retry_after_s: float | None = None,
        response_excerpt: str = "",
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.is_transient = is_transient
        self.retry_after_s = retry_after_s
        self.response_excerpt = response_excerpt


class _Secret:
    """A string that never shows itself in a repr or str."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return bool(self.value)

    def __repr__(self) -> str:
        return REDACTED if self.value else "''"

    __str__ = __repr__


class _Uniform(Protocol):
    def uniform(self, a: float, b: float, /) -> float: ...


# --- pure helpers ----------------------------------------------------------------------------


def redact(text: str, *, secrets: Iterable[str] = ()) -> str:
    """``text`` with the configured API key, the static token, ``secrets`` and every
    JWT-looking string replaced by ``[redacted]``."""
    candidates = {
        getattr(settings, "MASIVO_API_KEY", ""),
        getattr(settings, "MASIVO_TOKEN", ""),
        *secrets,
    }
    for secret in sorted((s for s in candidates if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return JWT_PATTERN.sub(REDACTED, text)


def backoff_delay(*, attempt: int, base: float, cap: float, rng: _Uniform = random) -> float:
    """Capped exponential backoff with full jitter: uniform in
    ``[0, min(cap, base * 2 ** (attempt - 1))]``, ``attempt`` counting from 1."""
    if attempt < 1:
        raise ValueError(ERR_BACKOFF_ATTEMPT)
    if base < 0 or cap < 0:
        raise ValueError(ERR_BACKOFF_NEGATIVE)
    # 2 ** 1024 overflows a float; long before that the cap applies.
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 1000))
    return rng.uniform(0.0, ceiling)


def token_expiry(*, token: str) -> float | None:
    """The ``exp`` claim (epoch seconds) of a JWT, read without checking its signature."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    segment = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(segment))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        return None
    return float(exp)


def token_refresh_at(*, expires_at: float, now: float, margin_s: float) -> float:
    """When a token expiring at ``expires_at`` should be replaced: ``margin_s`` before
    expiry, or at 80% of its lifetime when that is shorter than the margin."""
    lifetime = expires_at - now
    if lifetime > margin_s:
        return expires_at - margin_s
    return now + max(lifetime * SHORT_TOKEN_REFRESH_FRACTION, MIN_TOKEN_CACHE_S)


def retry_after_seconds(*, value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delay-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            return None
        now = time.time() if now is None else now
        return max(0.0, moment.timestamp() - now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def ratelimit_headers(*, headers: httpx.Headers) -> dict[str, int | float]:
    """``X-RateLimit-Limit/Remaining/Reset`` as ``{"limit": ..., "remaining": ...,
    "reset": ...}``, leaving out absent or unreadable ones."""
    found: dict[str, int | float] = {}
    for key in ("limit", "remaining", "reset"):
        raw = headers.get(f"x-ratelimit-{key}")
        if raw is None:
            continue
        try:
            found[key] = int(raw)
        except ValueError:
            try:
                number = float(raw)
            except ValueError:
                continue
            if math.isfinite(number):
                found[key] = number
    return found


def outcome_for_status(*, status_code: int) -> SendOutcome:
    if 200 <= status_code < 300:
        return SendOutcome.ACCEPTED
    if status_code == 413:
        return SendOutcome.TOO_LARGE
    if status_code in (408, 429, 503):
        return SendOutcome.RETRY_NOT_SENT
    if status_code >= 500:
        return SendOutcome.RETRY_UNKNOWN
    return SendOutcome.PERMANENT


def outcome_for_error(*, error: Exception) -> SendOutcome:
    """A transport error's meaning: was the request possibly processed?"""
    if isinstance(error, TotalTimeout):
        return SendOutcome.RETRY_NOT_SENT if error.before_sending else SendOutcome.RETRY_UNKNOWN
    # The request never completely left: connect, pool, proxy and write failures.
    if isinstance(
        error,
        httpx.ConnectError
        | httpx.ConnectTimeout
        | httpx.PoolTimeout
        | httpx.ProxyError
        | httpx.WriteError
        | httpx.WriteTimeout,
    ):
        return SendOutcome.RETRY_NOT_SENT
    # Our side built something unsendable, or the URL is unusable: sending again won't help.
    if isinstance(error, httpx.LocalProtocolError | httpx.UnsupportedProtocol | httpx.InvalidURL):
        return SendOutcome.PERMANENT
    # Read timeouts, resets after sending, a server hanging up without answering.
    return SendOutcome.RETRY_UNKNOWN


class TotalTimeout(httpx.TimeoutException):
    """The whole exchange took longer than ``MASIVO_TOTAL_TIMEOUT_S``."""

    def __init__(self, *, request: httpx.Request, before_sending: bool) -> None:
        super().__init__(TOTAL_TIMEOUT_MESSAGE, request=request)
        # True when the deadline passed while connecting or sending: nothing was processed.
        self.before_sending = before_sending


def _deadline_error(*, error: httpx.TimeoutException, deadline: float) -> httpx.TimeoutException:
    """The transport's timeout, as a TotalTimeout when it was the deadline that ran out."""
    if time.monotonic() < deadline:
        return error
    before_sending = isinstance(
        error, httpx.ConnectTimeout | httpx.PoolTimeout | httpx.WriteTimeout
    )
    return TotalTimeout(request=error.request, before_sending=before_sending)


class _DeadlineTimeouts(dict):
    """httpcore's per-request ``timeout`` extension, shortened to what is left of the
    request's total deadline every time the transport asks (once per socket operation)."""

    def __init__(self, *, timeouts: dict[str, float | None], deadline: float) -> None:
        super().__init__(timeouts)
        self.deadline = deadline

    def get(self, key: str, default: Any = None) -> Any:
        configured = super().get(key, default)
        left = max(self.deadline - time.monotonic(), MIN_SOCKET_TIMEOUT_S)
        return left if configured is None else min(float(configured), left)


@dataclass
class _Answer:
    status_code: int
    headers: httpx.Headers
    body: bytes


class _Departure:
    """An httpx ``trace`` hook that notes when a request's headers start to be written:
    the moment it leaves, after connecting (and TLS) on a new connection."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at: dt.datetime | None = None

    def __call__(self, event: str, _info: dict[str, Any]) -> None:
        if event.endswith(".send_request_headers.started"):
            self.at = dt.datetime.now(dt.UTC)


# --- the client --------------------------------------------------------------------------------


class MasivoClient:
    """Sends customers to Masivo over one reused ``httpx.Client``.

    Every argument defaults to its ``MASIVO_*`` setting; ``cache`` defaults to
    ``caches["default"]`` and ``transport`` (for tests) to httpx's own.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        auth_url: str | None = None,
        api_key: str | None = None,
        token: str | None = None,
        connect_timeout_s: float | None = None,
        read_timeout_s: float | None = None,
        total_timeout_s: float | None = None,
        refresh_margin_s: float | None = None,
        cache: BaseCache | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        def pick(value: Any, name: str, default: Any) -> Any:
            return getattr(settings, name, default) if value is None else value

        self._base_url = str(pick(base_url, "MASIVO_BASE_URL", "")).rstrip("/")
        self._auth_url = str(pick(auth_url, "MASIVO_AUTH_URL", ""))
        self._api_key = _Secret(str(pick(api_key, "MASIVO_API_KEY", "")))
        self._static_token = _Secret(str(pick(token, "MASIVO_TOKEN", "")))
        connect = float(pick(connect_timeout_s, "MASIVO_CONNECT_TIMEOUT_S", 5.0))
        read = float(pick(read_timeout_s, "MASIVO_READ_TIMEOUT_S", 60.0))
        self._total_timeout_s = float(pick(total_timeout_s, "MASIVO_TOTAL_TIMEOUT_S", 90.0))
        self._refresh_margin_s = float(pick(refresh_margin_s, "MASIVO_TOKEN_REFRESH_MARGIN_S", 300))
        self._timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=connect)
        self._cache = cache if cache is not None else caches["default"]
        # The key names the account without holding its key in the clear.
        digest = hashlib.sha256(f"{self._auth_url}\0{self._api_key.value}".encode()).hexdigest()
        self._token_key = f"{CACHE_KEY_PREFIX}{digest[:32]}"
        self._lock_key = f"{self._token_key}:lock"
        self._http = httpx.Client(
            timeout=self._timeout,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            limits=httpx.Limits(max_connections=10, keepalive_expiry=20.0),
        )

    def __repr__(self) -> str:
        auth = "static token" if self._static_token else "api key"
        return f"<MasivoClient base_url={self.redact(self._base_url)!r} auth={auth}>"

    def __enter__(self) -> MasivoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def redact(self, text: str) -> str:
        """:func:`redact` that also knows this client's own key and token."""
        return redact(text, secrets=(self._api_key.value, self._static_token.value))

    # --- sending -------------------------------------------------------------------------------

    def send_customers(self, body: bytes) -> SendResult:
        """POST ``body`` (the JSON envelope ``{"customers": [...]}``) to customers/migrate.

        Network and HTTP failures come back as a :class:`SendResult`; only a refusing or
        broken token endpoint raises :class:`MasivoAuthError`. ``duration_s`` covers the
        whole call, token fetch and 401 retry included.
        """
        started = time.monotonic()
        url = f"{self._base_url}{MIGRATE_PATH}"
        refreshed = False
        departure = _Departure()
        try:
            token, _fetched = self._token()
        except SEND_ERRORS as error:
            return self._error_result(
                error=error,
                started=started,
                outcome=SendOutcome.RETRY_NOT_SENT,
                note=NOTE_AUTH_REQUEST_FAILED % {"error": type(error).__name__},
            )
        while True:
            try:
                answer = self._exchange(
                    method="POST",
                    url=url,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                    },
                    content=body,
                    departure=departure,
                )
            except SEND_ERRORS as error:
                return self._error_result(
                    error=error,
                    started=started,
                    refreshed=refreshed,
                    token=token,
                    left_at=departure.at,
                )
            if answer.status_code == 401 and not refreshed and not self._static_token:
                logger.info("Masivo answered 401: fetching a fresh token and sending once more.")
                self._forget_token(token=token)
                refreshed = True
                try:
                    token, _fetched = self._token(reject=token)
                except SEND_ERRORS as error:
                    return self._error_result(
                        error=error,
                        started=started,
                        outcome=SendOutcome.RETRY_NOT_SENT,
                        refreshed=True,
                        note=NOTE_AUTH_REQUEST_FAILED % {"error": type(error).__name__},
                    )
                continue
            return self._answer_result(
                answer=answer,
                started=started,
                refreshed=refreshed,
                token=token,
                left_at=departure.at,
            )

    def _exchange(
        self,
        *,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None = None,
        departure: _Departure | None = None,
    ) -> _Answer:
        """One HTTP exchange under the total deadline; reads at most BODY_READ_LIMIT bytes.

        Raises httpx errors only until the status line is in: after that, a failure while
        reading the body keeps what was read, since the status already says what happened.
        """
        deadline = time.monotonic() + self._total_timeout_s
        request = self._http.build_request(method, url, headers=headers, content=content)
        request.extensions["timeout"] = _DeadlineTimeouts(
            timeouts=self._timeout.as_dict(), deadline=deadline
        )
        if departure is not None:
            request.extensions["trace"] = departure
        try:
            response = self._http.send(request, stream=True)
        except httpx.TimeoutException as error:
            renamed = _deadline_error(error=error, deadline=deadline)
            if renamed is error:
                raise
            raise renamed from error
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= BODY_READ_LIMIT:
                    break
        except httpx.HTTPError as error:
            logger.debug("Reading the answer's body failed: %s", type(error).__name__)
        finally:
            response.close()
        return _Answer(
            status_code=response.status_code, headers=response.headers, body=b"".join(chunks)
        )

    def _excerpt(self, *, body: bytes, token: str | None) -> str:
        text = body.decode("utf-8", errors="replace")
        secrets = (self._api_key.value, self._static_token.value, token or "")
        return redact(text, secrets=secrets)[:EXCERPT_CHARS]

    def _answer_result(
        self,
        *,
        answer: _Answer,
        started: float,
        refreshed: bool,
        token: str,
        left_at: dt.datetime | None = None,
    ) -> SendResult:
        outcome = outcome_for_status(status_code=answer.status_code)
        result = SendResult(
            status_code=answer.status_code,
            duration_s=time.monotonic() - started,
            outcome=outcome,
            response_excerpt=self._excerpt(body=answer.body, token=token),
            retry_after_s=retry_after_seconds(value=answer.headers.get("retry-after")),
            ratelimit=ratelimit_headers(headers=answer.headers),
            token_refreshed=refreshed,
            left_at=left_at,
        )
        logger.log(
            logging.DEBUG if outcome is SendOutcome.ACCEPTED else logging.INFO,
            "Masivo migrate answered %s (%s) in %.3f s",
            answer.status_code,
            outcome.value,
            result.duration_s,
        )
        return result

    def _error_result(
        self,
        *,
        error: Exception,
        started: float,
        outcome: SendOutcome | None = None,
        refreshed: bool = False,
        token: str | None = None,
        note: str = "",
        left_at: dt.datetime | None = None,
    ) -> SendResult:
        error_class = type(error).__name__
        outcome = outcome or outcome_for_error(error=error)
        result = SendResult(
            status_code=None,
            duration_s=time.monotonic() - started,
            outcome=outcome,
            error_class=error_class,
            response_excerpt=self._excerpt(body=note.encode(), token=token),
            token_refreshed=refreshed,
            left_at=left_at,
        )
        logger.info(
            "Masivo migrate failed without an answer: %s (%s) after %.3f s",
            error_class,
            outcome.value,
            result.duration_s,
        )
        return result

    # --- tokens -------------------------------------------------------------------------------

    def ensure_token(self) -> bool:
        """Make sure a usable token is at hand (cached for every process); True when it
        had to be fetched. Raises :class:`MasivoAuthError` or an ``httpx.HTTPError``."""
        return self._token()[1]

    def clear_cached_token(self) -> None:
        """Drop this account's cached token, so the next send fetches a new one."""
        self._cache.delete(self._token_key)

    def _token(self, *, reject: str | None = None) -> tuple[str, bool]:
        """A usable token (the static one, the cached one, or a fresh one) and whether it
        was fetched now. ``reject`` is a token Masivo just refused: never handed out again.
        """
        if self._static_token:
            return self._static_token.value, False
        if not self._api_key:
            raise MasivoAuthError(ERR_NO_CREDENTIALS)
        cached = self._cached_token(reject=reject)
        if cached is not None:
            return cached, False
        owner = uuid.uuid4().hex
        wait_until = time.monotonic() + TOKEN_WAIT_S
        pause = TOKEN_WAIT_FIRST_SLEEP_S
        while True:
            if self._cache.add(self._lock_key, owner, timeout=TOKEN_LOCK_TIMEOUT_S):
                try:
                    # Someone may have refreshed between our read and our lock.
                    cached = self._cached_token(reject=reject)
                    if cached is not None:
                        return cached, False
                    return self._fetch_and_store(), True
                finally:
                    if self._cache.get(self._lock_key) == owner:
                        self._cache.delete(self._lock_key)
            time.sleep(pause)
            pause = min(pause * 2, TOKEN_WAIT_MAX_SLEEP_S)
            cached = self._cached_token(reject=reject)
            if cached is not None:
                return cached, False
            if time.monotonic() >= wait_until:
                logger.warning("Gave up waiting for another process to refresh the token.")
                return self._fetch_and_store(), True

    def _cached_token(self, *, reject: str | None) -> str | None:
        entry = self._cache.get(self._token_key)
        if not isinstance(entry, dict):
            return None
        token = entry.get("token")
        if not isinstance(token, str) or not token or token == reject:
            return None
        if time.time() >= float(entry.get("refresh_at", 0)):
            return None
        return token

    def _forget_token(self, *, token: str) -> None:
        """Drop the cached token, but only if it is still the one Masivo refused."""
        entry = self._cache.get(self._token_key)
        if isinstance(entry, dict) and entry.get("token") == token:
            self._cache.delete(self._token_key)

    def _fetch_and_store(self) -> str:
        token = self._fetch_token()
        now = time.time()
        expires_at = token_expiry(token=token)
        if expires_at is None:
            logger.warning("The token carries no readable exp claim: assuming one hour.")
            expires_at = now + DEFAULT_TOKEN_LIFETIME_S
        refresh_at = token_refresh_at(
            expires_at=expires_at, now=now, margin_s=self._refresh_margin_s
        )
        self._cache.set(
            self._token_key,
            {"token": token, "refresh_at": refresh_at, "expires_at": expires_at},
            timeout=max(1, math.ceil(refresh_at - now)),
        )
        logger.info(
            "Fetched a Masivo token: expires in %.0f s, refreshed in %.0f s",
            expires_at - now,
            refresh_at - now,
        )
        return token

    def _fetch_token(self) -> str:
        answer = self._exchange(
            method="GET", url=self._auth_url, headers={"x-api-key": self._api_key.value}
        )
        if answer.status_code != 200:
            raise MasivoAuthError(
                ERR_AUTH_STATUS % {"status": answer.status_code},
                status_code=answer.status_code,
                is_transient=outcome_for_status(status_code=answer.status_code).is_retryable,
                retry_after_s=retry_after_seconds(value=answer.headers.get("retry-after")),
                response_excerpt=self._excerpt(body=answer.body, token=None),
            )
        try:
            payload = json.loads(answer.body)
        except ValueError as error:
            raise MasivoAuthError(ERR_AUTH_NOT_JSON, status_code=200) from error
        token = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise MasivoAuthError(ERR_AUTH_NO_DATA, status_code=200)
        return token
