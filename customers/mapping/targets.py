"""The fields a mapping fills: for each file kind, the kind's own columns (the headers of
docs/samples), read from the kind's resource so they cannot drift from what staging takes."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from customers.json_widgets import JSONValueWidget
from customers.models import Period
from customers.resources import RESOURCES_BY_KIND
from customers.widgets import (
    BooleanWidget,
    ChoiceWidget,
    CodeWidget,
    DateTimeWidget,
    DecimalWidget,
    NonNegativeIntegerWidget,
    PeriodWidget,
)

# The kinds a mapping can describe (a nested body is the endpoint's own shape).
MAPPING_KINDS = ("customers", "balances", "devices", "metrics", "transactions", "events")


@dataclass(frozen=True)
class Target:
    """One column of a kind, as a mapping sees it."""

    name: str
    type: str  # text, choice, datetime, date, number, integer, json
    required: bool
    widget: object

    @property
    def is_date(self) -> bool:
        return self.type in ("datetime", "date")

    @property
    def is_number(self) -> bool:
        return self.type in ("number", "integer")

    def choices(self) -> list[str]:
        """The values the contract takes for a choice field (from settings)."""
        if isinstance(self.widget, PeriodWidget):
            return list(Period.values)
        if isinstance(self.widget, ChoiceWidget | CodeWidget):
            return list(getattr(settings, self.widget.setting))
        if isinstance(self.widget, BooleanWidget):
            return list(BooleanWidget.choices)
        return []


def _type_of(widget) -> str:
    if isinstance(widget, DateTimeWidget):
        return "date" if widget.as_date else "datetime"
    if isinstance(widget, DecimalWidget):
        return "number"
    if isinstance(widget, NonNegativeIntegerWidget):
        return "integer"
    if isinstance(widget, ChoiceWidget | PeriodWidget | CodeWidget | BooleanWidget):
        return "choice"
    if isinstance(widget, JSONValueWidget):
        return "json"
    return "text"


def kind_targets(kind: str) -> dict[str, Target]:
    """The kind's columns in the order of its files, by name."""
    resource = RESOURCES_BY_KIND[kind]
    required = set(resource.required_columns)
    return {
        field.column_name: Target(
            name=field.column_name,
            type=_type_of(field.widget),
            required=field.column_name in required,
            widget=field.widget,
        )
        for field in resource.fields.values()
    }
