"""One error shape for the whole API, whatever raised the error.

Every error answers ``{"error": "<short code>", "details": "<a sentence>"}``, plus
``"fields": {"<field>": ["<sentence>", ...]}`` when input fields were refused. Services
raise the families of ``console.errors.ApplicationError``; this handler turns them,
Django's exceptions and DRF's own into that shape with the right status:

- 400 ``invalid``: DRF's or Django's ``ValidationError`` (``parse_error`` for a body
  that does not parse, or past Django's limits on a form's fields and size);
- 401 ``not_authenticated`` or ``authentication_failed``: no or wrong credentials;
- 403 ``permission_denied``: Django's or DRF's ``PermissionDenied`` (a missing permission,
  the four-eyes rule);
- 404 ``not_found``: ``Http404``, ``NotFound``;
- 409 ``conflict``: a state conflict of the services (``console.errors.StateConflict``);
- any other DRF ``APIException``: its status and default code.

Anything else is a bug, left to Django's 500.
"""

from __future__ import annotations

from django.core.exceptions import (
    NON_FIELD_ERRORS,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback

from console.errors import StateConflict, error_text

ERR_FIELDS = _("Some fields are not valid: %(fields)s.")
ERR_NOT_FOUND = _("Nothing was found at this address.")
ERR_PERMISSION = _("You do not have permission to do this.")
ERR_INVALID = _("The request is not valid.")
ERR_TOO_MANY_FIELDS = _(
    "The request holds too many fields or too much data to read; send fewer, or send a "
    "long list as JSON."
)


class ConflictError(exceptions.APIException):
    """The object is not in a state that allows what was asked (HTTP 409)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = _("The object is not in a state that allows this.")


def _text(value) -> str:
    """A flat sentence out of an error detail (a string, a list or a dict of them)."""
    if isinstance(value, dict):
        return " ".join(_text(v) for v in value.values())
    if isinstance(value, list | tuple):
        return " ".join(_text(v) for v in value)
    return str(value)


def _messages(value, where: str = "") -> list[str]:
    """A field's errors as a flat list of sentences; an error inside the field (an item
    of a list, a key of an object) says where: ``"[0] This field may not be blank."``."""
    if isinstance(value, dict):
        return [
            message
            for key, inner in value.items()
            for message in _messages(
                inner, f"{where}[{key}] " if isinstance(key, int) else f"{where}{key}: "
            )
        ]
    if isinstance(value, list | tuple):
        return [message for inner in value for message in _messages(inner, where)]
    return [f"{where}{value}"]


def error_body(*, error: str, details, fields: dict | None = None, **extra) -> dict:
    """The one error shape of the API."""
    body = {"error": error, "details": str(details)}
    if fields:
        body["fields"] = {str(name): _messages(errors) for name, errors in fields.items()}
    body.update(extra)
    return body


def _from_django(exc: Exception) -> exceptions.APIException | None:
    """Django's and the services' exceptions as DRF exceptions carrying the same message."""
    if isinstance(exc, Http404):
        return exceptions.NotFound(ERR_NOT_FOUND)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or ERR_PERMISSION)
    if isinstance(exc, StateConflict):
        return ConflictError(error_text(exc))
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(as_serializer_error(exc))
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent | RequestDataTooBig):
        # Django's limits on a form body (DATA_UPLOAD_MAX_*): a request to refuse, in JSON.
        return exceptions.ParseError(ERR_TOO_MANY_FIELDS)
    return None


def _validation_body(detail) -> dict:
    non_field_key = api_settings.NON_FIELD_ERRORS_KEY
    if not isinstance(detail, dict):
        return error_body(error="invalid", details=_text(detail) or ERR_INVALID)
    general = [*detail.get(non_field_key, []), *detail.get(NON_FIELD_ERRORS, [])]
    fields = {k: v for k, v in detail.items() if k not in (non_field_key, NON_FIELD_ERRORS)}
    sentences = [_text(general)] if general else []
    if fields:
        sentences.append(str(ERR_FIELDS % {"fields": ", ".join(fields)}))
        sentences.extend(_text(v) for v in fields.values())
    return error_body(
        error="invalid", details=" ".join(sentences) or ERR_INVALID, fields=fields or None
    )


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's ``EXCEPTION_HANDLER``: every handled error in the API's one shape."""
    exc = _from_django(exc) or exc
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: let Django answer 500 and log it

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, exceptions.ValidationError):
        body = _validation_body(exc.detail)
    else:
        code = exc.detail.code if isinstance(exc.detail, exceptions.ErrorDetail) else None
        body = error_body(error=code or exc.default_code, details=_text(exc.detail))
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)
