import pytest
from rest_framework.test import APIRequestFactory, force_authenticate

from migrations_jobs.api.permissions import ModelPermissions
from migrations_jobs.api.views.base import ConsoleView

pytestmark = pytest.mark.django_db


class Undeclared(ConsoleView):
    required_permissions = {"GET": ("customers.view_stagingbatch",)}

    def get(self, request):
        return None

    def post(self, request):
        return None


def allows(user, method: str) -> bool:
    request = getattr(APIRequestFactory(), method.lower())("/")
    force_authenticate(request, user=user)
    view = Undeclared()
    return ModelPermissions().has_permission(view.initialize_request(request), view)


def test_a_method_the_view_declares_no_permission_for_is_refused(importer):
    assert allows(importer, "GET")
    assert not allows(importer, "POST")


def test_a_method_the_view_does_not_implement_passes_on_to_405(importer):
    assert allows(importer, "DELETE")


def test_head_and_options_need_what_get_needs(importer, nobody):
    assert allows(importer, "HEAD")
    assert allows(importer, "OPTIONS")
    assert not allows(nobody, "OPTIONS")
