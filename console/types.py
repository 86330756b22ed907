"""Types the services' signatures share."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

    # The operator a service acts for: the project's user model (AUTH_USER_MODEL is
    # Django's own), with its permissions.
    Operator: TypeAlias = AbstractUser
else:
    Operator = "AbstractUser"
