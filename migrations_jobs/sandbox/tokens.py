"""The sandbox's bearer tokens: minimal HS256 JWTs signed with a key derived from
``SECRET_KEY``, built with the standard library only."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import time
import uuid

from django.conf import settings

HEADER = {"alg": "HS256", "typ": "JWT"}
ISSUER = "masivo-sandbox"

PROBLEM_MALFORMED = "Malformed token"
PROBLEM_SIGNATURE = "Invalid token signature"
PROBLEM_EXPIRED = "Token expired"


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(signing_input: bytes) -> str:
    key = hashlib.sha256(f"{ISSUER}:{settings.SECRET_KEY}".encode()).digest()
    return _b64encode(hmac.new(key, signing_input, hashlib.sha256).digest())


def sandbox_token_issue(*, lifetime_s: float, now: float | None = None) -> str:
    """A token valid for ``lifetime_s`` seconds from ``now`` (epoch; default: the clock)."""
    now = time.time() if now is None else now
    claims = {
        "iss": ISSUER,
        "sub": "sandbox-account",
        "iat": math.floor(now),
        # Rounded up, so the token lives at least ``lifetime_s``.
        "exp": math.ceil(now + lifetime_s),
        "jti": uuid.uuid4().hex,
    }
    header = _b64encode(json.dumps(HEADER, separators=(",", ":")).encode())
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    return f"{header}.{payload}.{_signature(signing_input)}"


def sandbox_token_expiry(*, token: str) -> int:
    """The ``exp`` claim of a token this module issued."""
    return json.loads(_b64decode(token.split(".")[1]))["exp"]


def sandbox_token_problem(*, token: str, now: float | None = None) -> str:
    """Why ``token`` is not accepted, or ``""`` when it is valid and unexpired."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return PROBLEM_MALFORMED
    try:
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    except UnicodeEncodeError:
        return PROBLEM_MALFORMED
    if not hmac.compare_digest(_signature(signing_input), parts[2]):
        return PROBLEM_SIGNATURE
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
    except (binascii.Error, ValueError):
        return PROBLEM_MALFORMED
    if header != HEADER or not isinstance(claims, dict):
        return PROBLEM_MALFORMED
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return PROBLEM_MALFORMED
    now = time.time() if now is None else now
    return PROBLEM_EXPIRED if now >= exp else ""
