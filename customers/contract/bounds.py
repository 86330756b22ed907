"""How large a free-form ``metadata`` object may be: nested at most ``METADATA_MAX_DEPTH``
levels and at most ``METADATA_MAX_BYTES`` written as compact JSON.

Masivo takes metadata as it is, so without a bound a file could stage an object nested a
thousand levels deep (which no page can render: Python's JSON reader gives up with a
RecursionError) or megabytes per customer (refused only at send time, with a 413). The
same bound holds at preview, at staging, at validation and in the admin's edit form.

Cheap for the usual small object: writing it once as compact JSON gives the size, and the
depth is walked (without recursion) only when the text holds more brackets than the
deepest allowed object could need.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.translation import gettext_lazy as _

from console.messages import FileSize
from customers.contract.messages import ContractError

METADATA_MAX_DEPTH = 32
METADATA_MAX_BYTES = 64 * 1024

ERR_METADATA_DEPTH = _(
    "Metadata is nested more than %(max)d levels deep; flatten it to %(max)d levels or fewer."
)
ERR_METADATA_SIZE = _(
    "Metadata takes %(size)s written as JSON; at most %(max)s per customer are accepted."
)


# Text longer than this is refused before it is parsed (pretty-printed JSON is larger than
# its compact form, so the exact bound is checked once parsed).
METADATA_MAX_TEXT_BYTES = 4 * METADATA_MAX_BYTES


def _size_error(size: int) -> ContractError:
    return ContractError(ERR_METADATA_SIZE, size=FileSize(size), max=FileSize(METADATA_MAX_BYTES))


def _depth_error() -> ContractError:
    return ContractError(ERR_METADATA_DEPTH, max=METADATA_MAX_DEPTH)


def json_depth(value: Any, *, stop_after: int) -> int:
    """How deeply objects and arrays nest in ``value`` (a scalar is 0, ``{}`` is 1), walked
    without recursion; stops counting once past ``stop_after``."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > stop_after:
            return deepest
        pending.extend((child, depth + 1) for child in children)
    return deepest


# Writes metadata as compact JSON; built once (``json.dumps`` with options builds one per call).
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


def metadata_check(value: dict) -> dict:
    """``value`` itself when within the bounds; raises ``ContractError`` otherwise."""
    try:
        text = _COMPACT.encode(value)
    except RecursionError:
        raise _depth_error() from None
    size = len(text.encode())
    if size > METADATA_MAX_BYTES:
        raise _size_error(size)
    if text.count("{") + text.count("[") > METADATA_MAX_DEPTH and (
        json_depth(value, stop_after=METADATA_MAX_DEPTH) > METADATA_MAX_DEPTH
    ):
        raise _depth_error()
    return value


def metadata_text_check(text: str) -> None:
    """Refuse metadata text far too large to be read, before it is parsed."""
    size = len(text.encode())
    if size > METADATA_MAX_TEXT_BYTES:
        raise _size_error(size)
