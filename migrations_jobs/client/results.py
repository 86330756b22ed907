"""What a request to Masivo came to: outcomes, results, and the token endpoint's refusal."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

import httpx

from migrations_jobs.client.transport import (
    SendFenced,
    TotalTimeout,
)

__all__ = ["SendFenced"]

# What a request can fail with before an answer is in (InvalidURL is no HTTPError).
SEND_ERRORS = (httpx.HTTPError, httpx.InvalidURL)

ERR_NO_CREDENTIALS = "Neither MASIVO_TOKEN nor MASIVO_API_KEY is set: no way to authenticate."
ERR_AUTH_STATUS = "Masivo's token endpoint answered HTTP %(status)s."
ERR_AUTH_NO_DATA = "Masivo's token endpoint answered without a token in “data”."
ERR_AUTH_NOT_JSON = "Masivo's token endpoint answered with a body that is not JSON."
NOTE_AUTH_REQUEST_FAILED = "The token request failed before anything was sent: %(error)s."


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
