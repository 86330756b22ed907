"""Reading a command's arguments: batches and users by name, services' refusals.

Shared by the console's management commands; a refusal becomes a ``CommandError`` with
a one-line message, never a traceback.

A command runs as the user its ``--user`` names, taken on trust: whoever can run
``manage.py`` on the console's host can reach its database anyway. What the user may do
is then checked exactly as the API checks it: each command declares the permissions of
the API's endpoint for the same action (``required_permissions``, checked by
``user_from_argument``), and the services check the rest (the four-eyes rule, the approve
permission) for every door alike. ``tests/commands/test_command_permissions.py`` pins each
command's permissions to its endpoint's.

A batch argument is its name or its id: a number (``7``) or ``id:7`` is an id, anything
else a name. No batch may be named so (``customers.services.batch_name_check``).
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
from customers.selectors import batch_find, batch_overlaps, batch_reference_id
from customers.services.mappings import profile_find

BATCH_HELP = "The batch's name, or its id (a number, or id:NUMBER)."
USER_HELP = "Run as this user: the command checks their permissions as the API does."
ERR_UNKNOWN_BATCH = "No batch is named “{batch}”."
ERR_UNKNOWN_BATCH_ID = "No batch has id {id}."
ERR_UNKNOWN_USER = "No active user is named “{user}”."
ERR_USER_PERMISSION = "User “{user}” needs the permission “{permission}” to do this."
ERR_UNKNOWN_MAPPING = (
    "“{mapping}” is neither a mapping file (.json) nor the name of a mapping profile."
)
ERR_MAPPING_JSON = "{path} is not valid JSON: {error}."


def batch_from_argument(reference: str) -> StagingBatch:
    """The batch ``reference`` names: by id when it is a number or ``id:NUMBER``."""
    batch = batch_find(reference=reference)
    if batch is None:
        raise CommandError(unknown_batch_text(reference))
    return batch


def unknown_batch_text(reference: str) -> str:
    """The refusal of a batch argument that names no batch."""
    batch_id = batch_reference_id(reference)
    if batch_id is not None:
        return ERR_UNKNOWN_BATCH_ID.format(id=batch_id)
    return ERR_UNKNOWN_BATCH.format(batch=reference)


def user_from_argument(username: str, *, permissions: tuple[str, ...] = ()):
    """The active user named ``username``, who must hold every one of ``permissions``
    (as the API's view for the same action requires them), the first missing one named."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(ERR_UNKNOWN_USER.format(user=username))
    missing = [permission for permission in permissions if not user.has_perm(permission)]
    if missing:
        raise CommandError(ERR_USER_PERMISSION.format(user=username, permission=missing[0]))
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
