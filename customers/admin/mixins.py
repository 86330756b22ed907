"""Small admin building blocks shared by the console's apps."""

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """Records of what happened: viewable, never added, changed or deleted by hand."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
