"""Keeping secrets (the API key, every token) out of reprs, logs, excerpts and errors."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.conf import settings

REDACTED = "[redacted]"

JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]*){0,2}")


class Secret:
    """A string that never shows itself in a repr or str."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return bool(self.value)

    def __repr__(self) -> str:
        return REDACTED if self.value else "''"

    __str__ = __repr__


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
