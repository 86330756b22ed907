"""When a sandbox request reached the server: the moment the arrival clock counts.

Under gunicorn (and runserver) a worker accepts the connection, reads the request line and
headers, builds the WSGI environ and calls Django, which sends ``request_started``, builds
the request object and enters the middleware chain; the body is read later, by the view.
The first middleware is therefore the earliest point the project's own code runs: this one
is first in ``MIDDLEWARE``, and it stamps the request before the rest of the chain, URL
resolution and body parsing add their time. (Time spent in the kernel's accept queue, with
every server worker busy, is not seen by any Python code: give the server enough workers.)
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

# Where config/urls.py mounts the sandbox.
SANDBOX_PATH_PREFIX = "/sandbox/"
# The request attribute holding the stamp (a timezone-aware datetime).
ARRIVED_AT = "sandbox_arrived_at"


class SandboxArrivalMiddleware:
    """Stamps ``request.sandbox_arrived_at`` on requests to the sandbox, and on no other.

    Not used at all (Django drops it from the chain) when the sandbox is not mounted."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not settings.MASIVO_SANDBOX:
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        arrived_at = timezone.now()
        if request.path_info.startswith(SANDBOX_PATH_PREFIX):
            setattr(request, ARRIVED_AT, arrived_at)
        return self.get_response(request)
