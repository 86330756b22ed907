"""The HTTP exchange's plumbing: a total deadline over httpx's timeouts, the answer
as read, and when the request left."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

# Only the excerpt is kept, so at most this much of an answer's body is read.
BODY_READ_LIMIT = 64 * 1024
# Smallest socket timeout handed to the transport once the deadline is (almost) reached.
MIN_SOCKET_TIMEOUT_S = 0.001
TOTAL_TIMEOUT_MESSAGE = "The request took longer than MASIVO_TOTAL_TIMEOUT_S."


class SendFenced(Exception):  # noqa: N818 (a refusal to send, not an error of Masivo's)
    """The caller's fence refused, immediately before the request's first byte would have
    been written: the worker no longer holds the chunk. Nothing was sent."""


class TotalTimeout(httpx.TimeoutException):
    """The whole exchange took longer than ``MASIVO_TOTAL_TIMEOUT_S``."""

    def __init__(self, *, request: httpx.Request, before_sending: bool) -> None:
        super().__init__(TOTAL_TIMEOUT_MESSAGE, request=request)
        # True when the deadline passed while connecting or sending: nothing was processed.
        self.before_sending = before_sending


def deadline_error(*, error: httpx.TimeoutException, deadline: float) -> httpx.TimeoutException:
    """The transport's timeout, as a TotalTimeout when it was the deadline that ran out."""
    if time.monotonic() < deadline:
        return error
    before_sending = isinstance(
        error, httpx.ConnectTimeout | httpx.PoolTimeout | httpx.WriteTimeout
    )
    return TotalTimeout(request=error.request, before_sending=before_sending)


class DeadlineTimeouts(dict):
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
class RawAnswer:
    status_code: int
    headers: httpx.Headers
    body: bytes


class Departure:
    """An httpx ``trace`` hook that notes when a request's headers start to be written:
    the moment it leaves, after connecting (and TLS) on a new connection.

    With ``may_leave``, that moment is also when the caller is asked, once per request,
    whether the request may leave: the last point before any byte of it is written, after
    whatever a new connection cost. ``SendFenced`` (raised there) stops it unsent."""

    __slots__ = ("at", "may_leave")

    def __init__(self, *, may_leave: Callable[[], bool] | None = None) -> None:
        self.at: dt.datetime | None = None
        self.may_leave = may_leave

    def __call__(self, event: str, _info: dict[str, Any]) -> None:
        if not event.endswith(".send_request_headers.started"):
            return
        if self.may_leave is not None and not self.may_leave():
            raise SendFenced
        self.at = dt.datetime.now(dt.UTC)
