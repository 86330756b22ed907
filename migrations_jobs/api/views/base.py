"""What every endpoint shares: permissions, pagination, error responses, input parsing."""

from __future__ import annotations

import json

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import BaseRenderer
from rest_framework.views import APIView

from console.exports import csv_lines
from console.ids import ID_MAX
from migrations_jobs.api import serializers as s
from migrations_jobs.api.filters import ERR_EMPTY, PAGE_SIZE_MAX, PageFilters
from migrations_jobs.api.permissions import ModelPermissions

ERR_NO_ENDPOINT = _(
    "There is no endpoint at this address; the API's endpoints are listed at /api/docs/."
)


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: _(
            "Bad input; `fields` names each refused field or query parameter (an empty "
            "query parameter is refused: leave it out instead)."
        ),
        401: _("Not authenticated."),
        403: _("Missing permission, or the four-eyes rule."),
        404: _("Not found: no object has this id (in a list: the page is past the last)."),
        409: _("The object's state does not allow this."),
        429: _("Too many wrong tokens from this address; Retry-After says when to try again."),
    }
    return {
        code: OpenApiResponse(s.ErrorSerializer, description=descriptions[code])
        for code in sorted({401, 403, 429, *codes})
    }


class ConsoleNegotiation(DefaultContentNegotiation):
    """DRF's negotiation; an empty ``?format=`` is refused like any empty parameter (a
    format no renderer has is a 404, as DRF answers it)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        name = self.settings.URL_FORMAT_OVERRIDE
        if name and request.query_params.get(name) == "":
            raise ValidationError({name: [ERR_EMPTY]})
        return super().select_renderer(request, renderers, format_suffix)


class ConsoleView(APIView):
    permission_classes = [ModelPermissions]
    content_negotiation_class = ConsoleNegotiation
    required_permissions: dict[str, tuple[str, ...]] = {}


class ConsolePagination(PageNumberPagination):
    """Pages of a list; a bad page or size is refused (400, ``filters.PageFilters``), a
    page past the last is not found (404)."""

    page_size_query_param = "page_size"
    max_page_size = PAGE_SIZE_MAX
    invalid_page_message = _("Page {page_number} is past the last page of this list.")

    def paginate_queryset(self, queryset, request, view=None):
        query_params(PageFilters, request)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        bounds = {"page": ID_MAX, self.page_size_query_param: self.max_page_size}
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"].update(minimum=1, maximum=bounds[parameter["name"]])
        return parameters


class ConsoleListView(generics.ListAPIView):
    permission_classes = [ModelPermissions]
    content_negotiation_class = ConsoleNegotiation
    pagination_class = ConsolePagination
    required_permissions: dict[str, tuple[str, ...]] = {}


def query_params(serializer_class, request) -> dict:
    """Validated query parameters (400 on a bad value)."""
    params = serializer_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params.validated_data


def request_data(serializer_class, request) -> dict:
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data


class JSONLinesRenderer(BaseRenderer):
    """JSON Lines; a dict (an error body) is rendered as one line."""

    media_type = "application/x-ndjson"
    format = "jsonl"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return json.dumps(data, ensure_ascii=False).encode("utf-8") + b"\n"


class CSVRenderer(BaseRenderer):
    """CSV; a dict (an error body) is rendered as a header row and a value row."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if not isinstance(data, dict):
            data = {"details": data}
        values = [json.dumps(v) if isinstance(v, dict | list) else v for v in data.values()]
        return "".join(csv_lines(list(data), [values])).encode("utf-8")


@extend_schema(exclude=True)
class NotFoundView(APIView):
    """Any address under the API that names no endpoint (``/api/jobs/null/``): a 404 in the
    API's one error shape, not the site's HTML page."""

    permission_classes: list = []

    def _answer(self, request, *args, **kwargs):
        raise NotFound(ERR_NO_ENDPOINT)

    get = post = put = patch = delete = _answer
