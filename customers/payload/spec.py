"""Which staging column each key of a customer's JSON comes from, in the contract's order.

Both ways of writing a payload (``rows``: Python, from ``.values_list()`` rows; ``sql``:
PostgreSQL writing the JSON text itself) read these tables, and both choose how to write
a value by the type of its model field: text, date-time, UUID, decimal, integer or JSON.
"""

from django.db import models

from customers.contract import PERIODS

# (JSON key, staging column)
Spec = tuple[tuple[str, str], ...]

CUSTOMER: Spec = (
    ("id", "legacy_id"),
    ("name", "name"),
    ("email", "email"),
    ("gender", "gender"),
    ("dob", "dob"),
    ("registration_date", "registration_date"),
    ("status", "status"),
    ("document_type", "document_type"),
    ("document_number", "document_number"),
    ("country", "country"),
    ("metadata", "metadata"),
)
# ``metrics`` follows ``metadata``: the customer's metric periods, then ``updated_at``.
METRICS_UPDATED_AT = ("updated_at", "metrics_updated_at")
METRIC: Spec = (
    ("from", "period_from"),
    ("to", "period_to"),
    ("tier_id", "tier_id"),
    ("last_visit", "last_visit"),
    ("last_session", "last_session"),
    ("spend_total", "spend_total"),
    ("number_of_purchases", "number_of_purchases"),
)
BALANCE: Spec = (
    ("reward_id", "reward_id"),
    ("amount", "amount"),
    ("expiration_date", "expiration_date"),
    ("brand_id", "brand_id"),
    ("channel_id", "channel_id"),
    ("store_id", "store_id"),
    ("issued_at", "issued_at"),
    ("funded_by", "funded_by"),
)
# A device: its token, then ``device_info`` gathering three columns, then its dates.
DEVICE_TOKEN = ("device_token", "device_token")
DEVICE_INFO: Spec = (("platform", "platform"), ("model", "model"), ("osVersion", "os_version"))
DEVICE_DATES: Spec = (("expires_at", "expires_at"), ("created_at", "created_at"))

# Metric periods are keyed in the contract's order; a period it does not list comes last.
PERIOD_ORDER = {period: index for index, period in enumerate(PERIODS)}


def field_kind(model: type[models.Model], column: str) -> str:
    """How a column's value is written: ``text``, ``datetime``, ``uuid``, ``decimal``,
    ``integer`` or ``json``."""
    field = model._meta.get_field(column)
    kinds = (
        (models.DateTimeField, "datetime"),
        (models.UUIDField, "uuid"),
        (models.DecimalField, "decimal"),
        (models.IntegerField, "integer"),
        (models.JSONField, "json"),
        (models.CharField, "text"),
        (models.TextField, "text"),
    )
    for field_class, kind in kinds:
        if isinstance(field, field_class):
            return kind
    raise TypeError(f"{model.__name__}.{column}: no way to write a {type(field).__name__}")
