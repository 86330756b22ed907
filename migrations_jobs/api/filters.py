"""The query parameters of the API's lists, read by one rule.

- An id (``?batch=``) is an integer from 1 to ``console.ids.ID_MAX``, the range of the
  database's keys; any other value is refused (400, naming the parameter) before the
  database is asked.
- A parameter given empty (``?status=``) is refused (400), not read as absent: the client
  asked for something, and the whole list would answer another question.
- Text (``?field=``) is compared as sent, spaces included.
- The page and its size (``?page=``, ``?page_size=``) follow the same rules; a page past
  the last answers 404 (``ConsolePagination``).

The schema says each of these (``minimum``, ``maximum``, ``minLength``, the enums), so a
value the schema allows is never refused here.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.fields import empty

from console.ids import ID_MAX, ID_MIN
from customers.models import CustomerProblem, StagedCustomer, StagingBatch
from customers.payload.history import ENDPOINTS
from migrations_jobs.models import MigrationJob

ERR_EMPTY = _("Give a value, or leave the parameter out.")
PAGE_SIZE_MAX = 1000

OUTCOMES = StagedCustomer._meta.get_field("outcome").choices


class Filters(serializers.Serializer):
    """Query parameters; a declared parameter given empty is refused, not ignored."""

    def to_internal_value(self, data):
        empty = [name for name in self.fields if name in data and data.get(name) == ""]
        if empty:
            raise serializers.ValidationError({name: [ERR_EMPTY] for name in empty})
        return super().to_internal_value(data)


class IdFilter(serializers.IntegerField):
    """An id in a query parameter: 1 to ``ID_MAX``, as the schema says."""

    def __init__(self, **kwargs):
        super().__init__(min_value=ID_MIN, max_value=ID_MAX, required=False, **kwargs)


class BooleanFilter(serializers.BooleanField):
    """A yes or no in a query parameter; left out, it filters nothing (a form's unticked
    box would read as false)."""

    default_empty_html = empty

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)


class PageFilters(Filters):
    page = serializers.IntegerField(min_value=1, max_value=ID_MAX, required=False)
    page_size = serializers.IntegerField(min_value=1, max_value=PAGE_SIZE_MAX, required=False)


class BatchFilters(Filters):
    status = serializers.ChoiceField(choices=StagingBatch.Status.choices, required=False)


class ProblemFilters(Filters):
    field = serializers.CharField(
        required=False,
        min_length=1,
        trim_whitespace=False,
        help_text=_("Only problems of this field."),
    )
    code = serializers.ChoiceField(choices=CustomerProblem.Code.choices, required=False)


class CustomerFilters(Filters):
    is_valid = BooleanFilter()
    is_excluded = BooleanFilter()
    outcome = serializers.ChoiceField(choices=OUTCOMES, required=False)


class JobCustomerFilters(Filters):
    outcome = serializers.ChoiceField(choices=OUTCOMES, required=False)
    possibly_twice = BooleanFilter(
        default=False,
        help_text=_("Only customers Masivo may hold twice (sent after an unknown outcome)."),
    )


class JobFilters(Filters):
    batch = IdFilter(help_text=_("Only jobs of this batch id."))
    status = serializers.ChoiceField(choices=MigrationJob.Status.choices, required=False)


class DryRunFilters(Filters):
    endpoint = serializers.ChoiceField(
        choices=ENDPOINTS,
        default="customers",
        help_text=_("Whose bodies: the customers (the default), the transactions or the events."),
    )
