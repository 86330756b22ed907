"""Mapping profiles: saved, found by name, and remembered for the headers they read."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from console.errors import InvalidInput
from console.types import Operator
from customers.mapping import header_signature, mapping_parse
from customers.models import MappingProfile

ERR_NAME_REQUIRED = _("A mapping profile needs a name.")
ERR_NAME_TAKEN = _("A mapping profile named “%(name)s” already exists.")


def profile_save(
    *,
    name: str,
    document: dict,
    user: Operator | None,
    profile: MappingProfile | None = None,
) -> MappingProfile:
    """Create ``name`` (or update ``profile``) from a mapping document, checked first."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput(ERR_NAME_REQUIRED, code="name")
    mapping = mapping_parse(document)
    taken = MappingProfile.objects.filter(name=name)
    if profile is not None and profile.pk is not None:
        taken = taken.exclude(pk=profile.pk)
    if taken.exists():
        raise InvalidInput(ERR_NAME_TAKEN % {"name": name}, code="name")
    if profile is None:
        profile = MappingProfile(created_by=user)
    profile.name = name
    profile.kind = mapping.kind
    profile.document = document
    profile.save()
    return profile


def profile_find(*, reference: str) -> MappingProfile | None:
    """The profile named ``reference`` (or with that id)."""
    found = MappingProfile.objects.filter(name=reference.strip()).first()
    if found is None and reference.strip().isdigit():
        found = MappingProfile.objects.filter(pk=int(reference)).first()
    return found


def profile_remember(*, profile: MappingProfile, headers: list[str]) -> None:
    """Remember that ``profile`` read a file with ``headers``: the next file with the same
    headers is offered this profile."""
    signature = header_signature(kind=profile.kind, headers=headers)
    with transaction.atomic():
        MappingProfile.objects.filter(header_signature=signature).exclude(pk=profile.pk).update(
            header_signature=""
        )
        MappingProfile.objects.filter(pk=profile.pk).update(
            header_signature=signature, last_used_at=timezone.now()
        )


def profile_for_headers(*, kind: str, headers: list[str]) -> MappingProfile | None:
    """The profile last used for a file of ``kind`` with these headers, if any."""
    signature = header_signature(kind=kind, headers=headers)
    return MappingProfile.objects.filter(kind=kind, header_signature=signature).first()
