"""``MasivoClient``: one ``customers/migrate`` request per call, with its token."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import BaseCache, caches

from migrations_jobs.client.headers import (
    ratelimit_headers,
    retry_after_seconds,
)
from migrations_jobs.client.redaction import (
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
    SendOutcome,
    SendResult,
    outcome_for_error,
    outcome_for_status,
)
from migrations_jobs.client.tokens import CACHE_KEY_PREFIX, SharedToken
from migrations_jobs.client.transport import (
    BODY_READ_LIMIT,
    DeadlineTimeouts,
    Departure,
    RawAnswer,
    deadline_error,
)

logger = logging.getLogger("migrations_jobs.client")
EXCERPT_CHARS = 500

USER_AGENT = "masivo-migration-console"
MIGRATE_PATH = "/customers/migrate"
# Where each kind of request goes, under MASIVO_BASE_URL (CONTRACT.md).
ENDPOINT_PATHS = {
    "customers": MIGRATE_PATH,
    "transactions": f"{MIGRATE_PATH}/transactions",
    "events": f"{MIGRATE_PATH}/events",
}


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
        self._api_key = Secret(str(pick(api_key, "MASIVO_API_KEY", "")))
        self._static_token = Secret(str(pick(token, "MASIVO_TOKEN", "")))
        connect = float(pick(connect_timeout_s, "MASIVO_CONNECT_TIMEOUT_S", 5.0))
        read = float(pick(read_timeout_s, "MASIVO_READ_TIMEOUT_S", 60.0))
        self._total_timeout_s = float(pick(total_timeout_s, "MASIVO_TOTAL_TIMEOUT_S", 90.0))
        self._refresh_margin_s = float(pick(refresh_margin_s, "MASIVO_TOKEN_REFRESH_MARGIN_S", 300))
        self._timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=connect)
        # The cache key names the account without holding its key in the clear.
        digest = hashlib.sha256(f"{self._auth_url}\0{self._api_key.value}".encode()).hexdigest()
        self._shared = SharedToken(
            cache=cache if cache is not None else caches["default"],
            key=f"{CACHE_KEY_PREFIX}{digest[:32]}",
            refresh_margin_s=self._refresh_margin_s,
        )
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

    def send_customers(
        self, body: bytes, *, may_send: Callable[[], bool] | None = None
    ) -> SendResult:
        """POST ``body`` (the JSON envelope ``{"customers": [...]}``) to customers/migrate
        (see ``send``)."""
        return self.send(body, may_send=may_send)

    def send(
        self,
        body: bytes,
        *,
        endpoint: str = "customers",
        may_send: Callable[[], bool] | None = None,
    ) -> SendResult:
        """POST ``body`` (the JSON envelope ``{"customers": [...]}``) to the migrate
        endpoint of ``endpoint`` (``ENDPOINT_PATHS``: customers, transactions, events).

        Network and HTTP failures come back as a :class:`SendResult`; only a refusing or
        broken token endpoint raises :class:`MasivoAuthError`. ``duration_s`` covers the
        whole call, token fetch and 401 retry included.

        ``may_send``, when given, is asked immediately before each POST's first byte is
        written (the token in hand, the connection open); when it answers False nothing is
        sent and :class:`SendFenced` is raised.
        """
        started = time.monotonic()
        departure = Departure(may_leave=may_send)
        token: str | None = None
        for refreshed in (False, True):
            try:
                token, _fetched = self._token(reject=token)
            except SEND_ERRORS as error:
                return self._error_result(
                    error=error,
                    started=started,
                    outcome=SendOutcome.RETRY_NOT_SENT,
                    refreshed=refreshed,
                    note=NOTE_AUTH_REQUEST_FAILED % {"error": type(error).__name__},
                )
            try:
                answer = self._post(
                    body=body, token=token, departure=departure, path=ENDPOINT_PATHS[endpoint]
                )
            except SEND_ERRORS as error:
                return self._error_result(
                    error=error,
                    started=started,
                    refreshed=refreshed,
                    token=token,
                    left_at=departure.at,
                )
            if answer.status_code != 401 or refreshed or self._static_token:
                break
            logger.info("Masivo answered 401: fetching a fresh token and sending once more.")
            self._forget_token(token=token)
        return self._answer_result(
            answer=answer,
            started=started,
            refreshed=refreshed,
            token=token,
            left_at=departure.at,
        )

    def _post(self, *, body: bytes, token: str, departure: Departure, path: str) -> RawAnswer:
        return self._exchange(
            method="POST",
            url=f"{self._base_url}{path}",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            content=body,
            departure=departure,
        )

    def _exchange(
        self,
        *,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None = None,
        departure: Departure | None = None,
    ) -> RawAnswer:
        """One HTTP exchange under the total deadline; reads at most BODY_READ_LIMIT bytes.

        Raises httpx errors only until the status line is in: after that, a failure while
        reading the body keeps what was read, since the status already says what happened.
        """
        deadline = time.monotonic() + self._total_timeout_s
        request = self._http.build_request(method, url, headers=headers, content=content)
        request.extensions["timeout"] = DeadlineTimeouts(
            timeouts=self._timeout.as_dict(), deadline=deadline
        )
        if departure is not None:
            request.extensions["trace"] = departure
        try:
            response = self._http.send(request, stream=True)
        except httpx.TimeoutException as error:
            renamed = deadline_error(error=error, deadline=deadline)
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
        return RawAnswer(
            status_code=response.status_code, headers=response.headers, body=b"".join(chunks)
        )

    def _excerpt(self, *, body: bytes, token: str | None) -> str:
        text = body.decode("utf-8", errors="replace")
        secrets = (self._api_key.value, self._static_token.value, token or "")
        return redact(text, secrets=secrets)[:EXCERPT_CHARS]

    def _answer_result(
        self,
        *,
        answer: RawAnswer,
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

    @property
    def shared_token(self) -> SharedToken:
        """The account's token as every process shares it."""
        return self._shared

    def clear_cached_token(self) -> None:
        """Drop this account's cached token, so the next send fetches a new one."""
        self._shared.clear()

    def _token(self, *, reject: str | None = None) -> tuple[str, bool]:
        """A usable token (the static one, the shared one, or a fresh one) and whether it
        was fetched now. ``reject`` is a token Masivo just refused: never handed out again.
        """
        if self._static_token:
            return self._static_token.value, False
        if not self._api_key:
            raise MasivoAuthError(ERR_NO_CREDENTIALS)
        return self._shared.get(fetch=self._fetch_token, reject=reject)

    def _forget_token(self, *, token: str) -> None:
        self._shared.forget(token=token)

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
