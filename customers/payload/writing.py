"""Payload dicts -> the request body's bytes, with exact decimals."""

import json
import re
import secrets
from decimal import Context, Decimal
from typing import Any

_EXACT = Context(prec=64)


def number_text(value: Decimal) -> str:
    """A decimal as JSON number text without exponent or trailing zeros: ``50.2``, ``123``."""
    text = str(value)
    if "E" in text or "e" in text:
        text = format(value.normalize(_EXACT), "f")
    elif "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "0", "") else text


def body_bytes(payloads: list[dict]) -> bytes:
    """The request body ``{"customers": [...]}``: compact JSON, UTF-8, exact decimals."""
    raw_marker = ""

    def exact(value: Any) -> Any:
        nonlocal raw_marker
        if not isinstance(value, Decimal):
            raise TypeError(f"{type(value).__name__} is not JSON serializable")
        text = number_text(value)
        if "." not in text:
            return int(text)
        as_float = float(text)
        if repr(as_float) == text:
            return as_float
        # No float holds these digits: write a marker string, then the text in its place.
        # The marker is random per body, so no value in the data can imitate it.
        if not raw_marker:
            raw_marker = secrets.token_hex(16)
        return raw_marker + text

    body = json.dumps(
        {"customers": payloads},
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=exact,
    )
    if raw_marker:
        body = re.sub(f'"{raw_marker}(-?[0-9.]+)"', r"\1", body)
    return body.encode("utf-8")


def texts_body(texts: list[str]) -> bytes:
    """The request body around customers already written as JSON text."""
    return ('{"customers":[' + ",".join(texts) + "]}").encode("utf-8")
