"""The errors a person reads, raised by services.

Services raise a family of ``ApplicationError`` with a translatable message, a code and
its parameters; each interface turns a family into its own answer in one place:

| family | API (``migrations_jobs.api.exceptions``) | admin (``console.admin``) | command |
|---|---|---|---|
| ``InvalidInput`` | 400 ``invalid`` | error message | exit 1, the message |
| ``NotPermitted`` | 403 ``permission_denied`` | error message | exit 1, the message |
| ``StateConflict`` | 409 ``conflict`` | error message | exit 1, the message |

The families are also Django's own exceptions (``ValidationError``, ``PermissionDenied``),
so Django's forms and admin, and code that expects those, handle them as such.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError


class ApplicationError(Exception):
    """Base of every error a service raises for a person to read."""

    # The API's answer to the family: HTTP status and short code.
    http_status = 400
    http_code = "invalid"


class InvalidInput(ApplicationError, ValidationError):
    """What was given is not acceptable (a value, a file, a missing reason)."""

    def __init__(self, message, code: str = "invalid", params: dict | None = None) -> None:
        ValidationError.__init__(self, message, code=code, params=params)


class StateConflict(ApplicationError, ValidationError):
    """The object is not in a state that allows what was asked."""

    http_status = 409
    http_code = "conflict"

    def __init__(self, message, code: str = "state", params: dict | None = None) -> None:
        ValidationError.__init__(self, message, code=code, params=params)


class NotPermitted(ApplicationError, PermissionDenied):
    """The user may not do this: a missing permission, the four-eyes rule."""

    http_status = 403
    http_code = "permission_denied"


def error_text(error: Exception) -> str:
    """An error as the one sentence a person reads (a ``ValidationError``'s messages
    joined, any other exception's text)."""
    if isinstance(error, ValidationError):
        return " ".join(str(message) for message in error.messages)
    return str(error)
