"""Small admin building blocks shared by the console's apps."""

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import FieldDoesNotExist
from django.db import connection, models
from django.db.models.constants import LOOKUP_SEP
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


def integer_field(field) -> models.IntegerField | None:
    """The integer column a lookup on ``field`` compares with (a relation compares with
    the related key), or None when it is not an integer."""
    target = field
    if isinstance(field, models.ForeignObject):
        target = field.target_field
    elif field.is_relation:
        target = field.related_model._meta.pk if field.related_model is not None else None
    return target if isinstance(target, models.IntegerField) else None


def integer_fits(value: int, *, field: models.IntegerField) -> bool:
    """Whether the database can hold ``value`` in ``field``'s column."""
    low, high = connection.ops.integer_field_range(field.get_internal_type())
    return (low is None or value >= low) and (high is None or value <= high)


def lookup_integer_field(model: type[models.Model], lookup: str) -> models.IntegerField | None:
    """The integer column a change list's lookup (``batch``, ``job__id__in``) compares its
    values with, or None (not an integer, or not a field: Django refuses those itself)."""
    opts, field = model._meta, None
    for part in lookup.split(LOOKUP_SEP):
        if field is not None:
            if not (field.is_relation and field.related_model is not None):
                break  # the rest names a lookup (``exact``, ``in``) or a transform
            opts = field.related_model._meta
        try:
            field = opts.pk if part == "pk" else opts.get_field(part)
        except FieldDoesNotExist:
            break
    return integer_field(field) if field is not None else None


def _texts(values) -> list[str]:
    if isinstance(values, list | tuple):
        return [text for value in values for text in _texts(value)]
    return [values] if isinstance(values, str) else []


class IdLookupsChangeList(ChangeList):
    """A change list that looks up an integer column (``?batch=``, ``?job=``,
    ``?id__in=``) only with numbers the column can hold: any other is a lookup the list
    cannot make, answered as the admin answers every invalid lookup (the list again, with
    ``?e=1``), not a server error from the database."""

    def get_filters(self, request):
        filters = super().get_filters(request)
        for lookup, values in filters[2].items():
            field = lookup_integer_field(self.model, lookup)
            if field is None:
                continue
            for text in _texts(values):
                try:
                    value = int(text)
                except ValueError:
                    continue  # not a number: the lookup itself refuses it
                if not integer_fits(value, field=field):
                    raise IncorrectLookupParameters(f"{lookup}={text}: out of range")
        return filters


class IdLookupsMixin:
    """For a ``ModelAdmin``: its change list checks integer lookups (``IdLookupsChangeList``)."""

    def get_changelist(self, request: HttpRequest, **kwargs):
        return IdLookupsChangeList


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
