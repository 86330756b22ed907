"""Small admin building blocks shared by the console's apps."""

from django.contrib.admin.widgets import AdminSplitDateTime
from django.db import models
from django.http import HttpRequest
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _


class ReadOnlyAdminMixin:
    """Records of what happened: viewable, never added, changed or deleted by hand."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class LabelledSplitDateTime(AdminSplitDateTime):
    """The admin's date and time inputs, each with a name of its own ("Dob: date").

    The admin shows a date-time field as a group whose legend names the field, and its
    "Date:" and "Time:" as plain text: the two inputs themselves have no name for a screen
    reader, nor in a table's row (an inline) where no legend is shown."""

    def __init__(self, attrs=None, *, label: str = ""):
        super().__init__(attrs)
        self.label = label

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        field = capfirst(str(self.label or name))
        for sub, part in zip(context["widget"]["subwidgets"], (_("date"), _("time")), strict=False):
            sub["attrs"]["aria-label"] = f"{field}: {part}"
        return context


class LabelledDateTimesMixin:
    """For a ``ModelAdmin`` or an inline: every date-time field's inputs named
    (``LabelledSplitDateTime``)."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.DateTimeField) and db_field.editable:
            kwargs.setdefault("widget", LabelledSplitDateTime(label=db_field.verbose_name))
        return super().formfield_for_dbfield(db_field, request, **kwargs)
