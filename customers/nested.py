"""Staging a nested JSON document shaped like the endpoint's body.

Each customer is checked with the contract's own serializer (``customers.contract``), so a
file that stages here is one Masivo would take; its balances, devices and metrics are
staged with it, all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from console.messages import Message
from customers.formats import NestedDocument
from customers.models import (
    StagedBalance,
    StagedCustomer,
    StagedDevice,
    StagedMetric,
    StagingBatch,
)

ERR_NOT_OBJECT = _("each entry of “customers” must be an object")
ERR_DUPLICATE_ID = _("id “%(value)s” appears again in this file (first as customer %(first)s)")
ERR_ALREADY_STAGED = _("a customer with id “%(value)s” is already staged in this batch")
ERR_EMPTY = _('The document has no customers: "customers" is an empty list.')

CUSTOMER_FIELDS = (
    "name", "email", "gender", "dob", "registration_date", "status", "document_type",
    "document_number", "country", "metadata",
)  # fmt: skip
BALANCE_FIELDS = (
    "reward_id", "amount", "expiration_date", "issued_at", "brand_id", "channel_id",
    "store_id", "funded_by",
)  # fmt: skip
METRIC_FIELDS = {
    "from": "period_from",
    "to": "period_to",
    "tier_id": "tier_id",
    "last_visit": "last_visit",
    "last_session": "last_session",
    "spend_total": "spend_total",
    "number_of_purchases": "number_of_purchases",
}
BLOCK = 2000


@dataclass
class NestedStaging:
    """Validated customers of a document, ready to be written."""

    customers: list[dict] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "customers": len(self.customers),
            "balances": sum(len(c.get("balance") or ()) for c in self.customers),
            "devices": sum(len(c.get("devices") or ()) for c in self.customers),
            "metrics": sum(
                sum(1 for k in (c.get("metrics") or {}) if k != "updated_at")
                for c in self.customers
            ),
        }


def nested_parse(*, batch: StagingBatch, document: NestedDocument, result) -> NestedStaging:
    """Check every customer of ``document``; problems go to ``result``."""
    from customers.contract import CustomerSerializer, problems_from_errors

    staging = NestedStaging()
    first_seen: dict[str, int] = {}
    context = {"time_zone": batch.time_zone}
    for number, item in enumerate(document.customers, start=1):
        result.row_count += 1
        if not isinstance(item, dict):
            result.add_problem(number, "", ERR_NOT_OBJECT)
            continue
        serializer = CustomerSerializer(data=item, context=context)
        if not serializer.is_valid():
            record = item.get("id") if isinstance(item.get("id"), str) else ""
            for problem in problems_from_errors(serializer.errors):
                result.add_problem(number, problem.field, problem.untranslated, record=record)
            continue
        data = dict(serializer.validated_data)
        legacy_id = data["id"]
        if legacy_id in first_seen:
            result.add_problem(
                number,
                "id",
                Message.of(ERR_DUPLICATE_ID, value=legacy_id, first=first_seen[legacy_id]),
                record=legacy_id,
            )
            continue
        first_seen[legacy_id] = number
        data["_number"] = number
        staging.customers.append(data)
        if len(result.sample_rows) < 20:
            result.sample_headers = ["id", "name", "email"]
            result.sample_rows.append([legacy_id, data.get("name", ""), data.get("email", "")])
    if result.row_count == 0:
        result.add_problem(None, "", ERR_EMPTY)
    ids = list(first_seen)
    for start in range(0, len(ids), BLOCK):
        for legacy_id in StagedCustomer.objects.filter(
            batch=batch, legacy_id__in=ids[start : start + BLOCK]
        ).values_list("legacy_id", flat=True):
            result.add_problem(
                first_seen[legacy_id],
                "id",
                Message.of(ERR_ALREADY_STAGED, value=legacy_id),
                record=legacy_id,
            )
    return staging


def _customer(batch: StagingBatch, data: dict) -> StagedCustomer:
    values = {name: data[name] for name in CUSTOMER_FIELDS if data.get(name) not in (None, "")}
    metrics = data.get("metrics") or {}
    return StagedCustomer(
        batch=batch,
        legacy_id=data["id"],
        metrics_updated_at=metrics.get("updated_at"),
        **values,
    )


def nested_write(*, batch: StagingBatch, staging: NestedStaging, result) -> None:
    """Write the checked customers and their children; call inside a transaction."""
    assert transaction.get_connection().in_atomic_block  # noqa: S101
    for start in range(0, len(staging.customers), BLOCK):
        block = staging.customers[start : start + BLOCK]
        customers = StagedCustomer.objects.bulk_create([_customer(batch, d) for d in block])
        balances, devices, metrics = [], [], []
        for customer, data in zip(customers, block, strict=True):
            for entry in data.get("balance") or ():
                balances.append(
                    StagedBalance(
                        batch=batch,
                        customer=customer,
                        **{k: entry[k] for k in BALANCE_FIELDS if entry.get(k) not in (None, "")},
                    )
                )
            for entry in data.get("devices") or ():
                info = entry.get("device_info") or {}
                devices.append(
                    StagedDevice(
                        batch=batch,
                        customer=customer,
                        device_token=entry["device_token"],
                        platform=info.get("platform") or "",
                        model=info.get("model") or "",
                        os_version=info.get("osVersion") or "",
                        expires_at=entry.get("expires_at"),
                        created_at=entry.get("created_at"),
                    )
                )
            for period, values in (data.get("metrics") or {}).items():
                if period == "updated_at":
                    continue
                metrics.append(
                    StagedMetric(
                        batch=batch,
                        customer=customer,
                        period=period,
                        **{
                            attr: values[key]
                            for key, attr in METRIC_FIELDS.items()
                            if values.get(key) is not None
                        },
                    )
                )
        StagedBalance.objects.bulk_create(balances, batch_size=1000)
        StagedDevice.objects.bulk_create(devices, batch_size=1000)
        StagedMetric.objects.bulk_create(metrics, batch_size=1000)
