"""Reading a command's arguments: batches and users by name, services' refusals.

Shared by the console's management commands; a refusal becomes a ``CommandError`` with
a one-line message, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import CommandError

from console.errors import ApplicationError, error_text
from customers.models import MappingProfile, StagingBatch
from customers.selectors import batch_find, batch_overlaps
from customers.services.mappings import profile_find

BATCH_HELP = "The batch's name or numeric id."
ERR_UNKNOWN_BATCH = "No batch is named “{batch}”, and none has that id."
ERR_UNKNOWN_USER = "No active user is named “{user}”."
ERR_USER_PERMISSION = "User “{user}” needs the permission “{permission}” to do this."
ERR_UNKNOWN_MAPPING = (
    "“{mapping}” is neither a mapping file (.json) nor the name of a mapping profile."
)
ERR_MAPPING_JSON = "{path} is not valid JSON: {error}."


def batch_from_argument(reference: str) -> StagingBatch:
    batch = batch_find(reference=reference)
    if batch is None:
        raise CommandError(ERR_UNKNOWN_BATCH.format(batch=reference))
    return batch


def user_from_argument(username: str, *, permission: str | None = None):
    """The active user named ``username``, who must hold ``permission`` when one is given."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(ERR_UNKNOWN_USER.format(user=username))
    if permission is not None and not user.has_perm(permission):
        raise CommandError(ERR_USER_PERMISSION.format(user=username, permission=permission))
    return user


def mapping_from_argument(reference: str) -> MappingProfile | dict:
    """A mapping file's document (a path ending in .json) or a profile by name or id."""
    path = Path(reference)
    if path.suffix.lower() == ".json" or path.is_file():
        if not path.is_file():
            raise CommandError(ERR_UNKNOWN_MAPPING.format(mapping=reference))
        try:
            return json.loads(path.read_text(encoding="utf-8-sig"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CommandError(ERR_MAPPING_JSON.format(path=reference, error=exc)) from exc
    profile = profile_find(reference=reference)
    if profile is None:
        raise CommandError(ERR_UNKNOWN_MAPPING.format(mapping=reference))
    return profile


@contextmanager
def service_errors() -> Iterator[None]:
    """A service's refusal (permission, four-eyes, state, bad value) as a ``CommandError``:
    one line, exit status 1."""
    try:
        yield
    except (ApplicationError, PermissionDenied, ValidationError) as exc:
        raise CommandError(error_text(exc)) from exc


def overlap_warnings(batch: StagingBatch) -> list[str]:
    """One line per other batch (approved or submitted) holding customers ``batch`` sends."""
    return [
        f"Note: {overlap.customers:,} customer(s) are also in batch “{overlap.name}” "
        f"(id {overlap.batch_id}, {overlap.status}). The console sends a customer once: "
        "whichever job reaches them first sends them, the other skips them."
        for overlap in batch_overlaps(batch=batch)
    ]
