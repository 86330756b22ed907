"""Which contract an entry was checked with: the code that writes and judges it, and the
settings that code reads.

A batch records the revision its entries passed (``customers.services.entries``); a check
made with other code or other settings is not taken as proof, so an upgrade of the console
or a change of ``MASIVO_GENDERS`` (say) has validation check every entry again.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

from django.conf import settings

from customers.contract.messages import CHOICE_SETTINGS

# The code deciding whether an entry passes: the contract's rules, how an entry is written
# (from a file's row and from staged rows), the staged columns, the import's entry check.
_CODE = ("contract/*.py", "payload/*.py", "models/staged.py", "resources/checks.py")
_SETTINGS = (*CHOICE_SETTINGS, "MASIVO_REQUIRED_FIELDS")


@cache
def _code_digest() -> bytes:
    app = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for pattern in _CODE:
        for path in sorted(app.glob(pattern)):
            digest.update(path.relative_to(app).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.digest()


def contract_revision() -> str:
    """64 hex digits naming the contract as this process checks entries now."""
    digest = hashlib.sha256(_code_digest())
    values = {name: list(getattr(settings, name)) for name in _SETTINGS}
    digest.update(json.dumps(values, sort_keys=True).encode())
    return digest.hexdigest()
