"""Thin HTTP views over the sandbox services, shaped like Masivo's endpoints."""

import time

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from migrations_jobs.sandbox.middleware import ARRIVED_AT
from migrations_jobs.sandbox.models import SandboxRequest
from migrations_jobs.sandbox.services import SandboxAnswer, sandbox_authorize, sandbox_migrate


def _respond(answer: SandboxAnswer) -> JsonResponse:
    if answer.delay_s > 0:
        # The request is already processed and recorded: only the answer is late.
        time.sleep(answer.delay_s)
    response = JsonResponse(answer.payload, status=answer.status_code)
    for name, value in answer.headers.items():
        response[name] = value
    return response


@require_GET
def authorize(request: HttpRequest) -> JsonResponse:
    return _respond(sandbox_authorize(api_key=request.headers.get("x-api-key")))


def _migrate(request: HttpRequest, kind: str) -> JsonResponse:
    processed_at = timezone.now()
    try:
        body: bytes | None = request.body
    except RequestDataTooBig:
        body = None
    answer = sandbox_migrate(
        authorization=request.headers.get("Authorization"),
        content_type=request.headers.get("Content-Type"),
        body=body,
        arrived_at=getattr(request, ARRIVED_AT, None),
        processed_at=processed_at,
        kind=kind,
    )
    return _respond(answer)


@csrf_exempt
@require_POST
def migrate(request: HttpRequest) -> JsonResponse:
    return _migrate(request, SandboxRequest.Kind.CUSTOMERS)


@csrf_exempt
@require_POST
def migrate_transactions(request: HttpRequest) -> JsonResponse:
    return _migrate(request, SandboxRequest.Kind.TRANSACTIONS)


@csrf_exempt
@require_POST
def migrate_events(request: HttpRequest) -> JsonResponse:
    return _migrate(request, SandboxRequest.Kind.EVENTS)
