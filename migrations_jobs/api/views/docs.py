"""The API's OpenAPI schema and its Swagger UI, for authenticated users unless ``DEBUG``
(``SchemaPermission``). A browser that is not signed in is sent to the admin's login page
and back: the UI then reads the schema with the admin's session."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.urls import reverse
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.exceptions import NotAuthenticated

from migrations_jobs.api.permissions import SchemaPermission


class SchemaView(SpectacularAPIView):
    permission_classes = [SchemaPermission]


class DocsView(SpectacularSwaggerSplitView):
    permission_classes = [SchemaPermission]

    def handle_exception(self, exc):
        if isinstance(exc, NotAuthenticated):
            return redirect_to_login(self.request.get_full_path(), reverse("admin:login"))
        return super().handle_exception(exc)
