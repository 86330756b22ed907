"""Model permissions per endpoint and method, checked before the view runs.

A view declares ``required_permissions = {"GET": (VIEW_BATCH,), "POST": (IMPORT,)}``.
The services check again what they own (the four-eyes rule, the approve permission), so a
view never decides those itself. Whatever shows customers' personal data (their list, a
dry run, problems, a job's customers) also names ``VIEW_CUSTOMER``, the permission
``customers.services.user_may_see_customers`` asks for in the admin and the commands.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission

from customers.services import CUSTOMER_DATA_PERMISSION

ERR_MISSING_PERMISSION = _("You need the permission “%(permission)s” to do this.")

IMPORT = "customers.import_stagingbatch"
CHANGE_BATCH = "customers.change_stagingbatch"
APPROVE = "customers.approve_stagingbatch"
SUBMIT = "customers.submit_stagingbatch"
VIEW_BATCH = "customers.view_stagingbatch"
VIEW_CUSTOMER = CUSTOMER_DATA_PERMISSION
VIEW_JOB = "migrations_jobs.view_migrationjob"


class ModelPermissions(BasePermission):
    """The user is authenticated and holds every permission the view names for the method.

    A method the view implements but names no permissions for is refused; one it does not
    implement passes, so that the view answers 405. An anonymous request fails here too,
    and DRF answers it with 401, not 403.
    """

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        required = view.required_permissions.get(method)
        if required is None:
            return not hasattr(view, request.method.lower())
        missing = [perm for perm in required if not user.has_perm(perm)]
        if missing:
            self.message = ERR_MISSING_PERMISSION % {"permission": missing[0]}
            return False
        return True


class SchemaPermission(BasePermission):
    """The OpenAPI schema and its docs: open on a developer's machine (``DEBUG``), for
    authenticated users everywhere else, since they describe every endpoint and field."""

    def has_permission(self, request, view) -> bool:
        return settings.DEBUG or bool(request.user and request.user.is_authenticated)
