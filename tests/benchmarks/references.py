"""The reference points the console is measured against, run side by side with it.

- django-import-export's own way of importing a customers CSV through its admin (preview,
  then confirm), with three resources: the library's defaults, ``use_bulk`` with
  ``skip_diff``, and the same with ``force_init_instance``. They are served by an admin
  site of their own (``reference_site``, mounted at ``/reference-admin/`` by the
  benchmarks' URLs) so the console's admin stays as it is.
- The floor: a plain ``csv`` reader and ``bulk_create``, one pass, no checks.
- PostgreSQL's COPY through psycopg 3, one pass, no checks.
- The sending reference: a plain script that reads the same files, groups each customer's
  children and POSTs batches of 1000 with ``requests``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import requests
from django.contrib import admin
from django.db import connection, transaction
from import_export import fields, resources, widgets
from import_export.admin import ImportMixin

from customers.models import (
    StagedBalance,
    StagedCustomer,
    StagedDevice,
    StagedMetric,
    StagingBatch,
)

ISO = "%Y-%m-%dT%H:%M:%SZ"


# --- django-import-export -------------------------------------------------------------------


class _CustomerResource(resources.ModelResource):
    """The customers file as django-import-export reads it: ``id`` is the legacy id, rows
    are looked up by it within the batch, dates are ISO 8601 in UTC."""

    legacy_id = fields.Field(attribute="legacy_id", column_name="id")
    dob = fields.Field(
        attribute="dob", column_name="dob", widget=widgets.DateTimeWidget("%Y-%m-%d")
    )
    registration_date = fields.Field(
        attribute="registration_date",
        column_name="registration_date",
        widget=widgets.DateTimeWidget(ISO),
    )
    metrics_updated_at = fields.Field(
        attribute="metrics_updated_at",
        column_name="metrics_updated_at",
        widget=widgets.DateTimeWidget(ISO),
    )
    metadata = fields.Field(
        attribute="metadata", column_name="metadata", widget=widgets.JSONWidget()
    )

    def __init__(self, batch_id: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.batch_id = batch_id

    def get_queryset(self):
        return StagedCustomer.objects.filter(batch_id=self.batch_id)

    def import_instance(self, instance, row, **kwargs):
        super().import_instance(instance, row, **kwargs)
        instance.batch_id = self.batch_id

    class Meta:
        model = StagedCustomer
        import_id_fields = ("legacy_id",)
        fields = (
            "legacy_id", "name", "email", "gender", "dob", "registration_date", "status",
            "document_type", "document_number", "country", "metadata", "metrics_updated_at",
        )  # fmt: skip


class DefaultResource(_CustomerResource):
    class Meta(_CustomerResource.Meta):
        name = "django-import-export default"


class BulkResource(_CustomerResource):
    class Meta(_CustomerResource.Meta):
        name = "use_bulk + skip_diff"
        use_bulk = True
        skip_diff = True


class BulkInitResource(_CustomerResource):
    class Meta(_CustomerResource.Meta):
        name = "use_bulk + skip_diff + force_init_instance"
        use_bulk = True
        skip_diff = True
        force_init_instance = True


REFERENCE_RESOURCES = [DefaultResource, BulkResource, BulkInitResource]


class ReferenceSite(admin.AdminSite):
    site_header = "django-import-export reference"


reference_site = ReferenceSite(name="reference")


@admin.register(StagedCustomer, site=reference_site)
class ReferenceCustomerAdmin(ImportMixin, admin.ModelAdmin):
    """django-import-export's import views as the library ships them."""

    resource_classes = REFERENCE_RESOURCES
    skip_admin_log = True

    def get_import_formats(self):
        from import_export.formats.base_formats import CSV as LibraryCSV

        return [LibraryCSV]

    def get_import_resource_kwargs(self, request, **kwargs):
        return {"batch_id": int(request.GET["batch"])}


# --- one pass, no checks ----------------------------------------------------------------------


def _when(value: str) -> dt.datetime | None:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _decimal(value: str) -> Decimal | None:
    return Decimal(value) if value else None


def _uuid(value: str) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def _int(value: str) -> int | None:
    return int(value) if value else None


def _customer_values(row: dict) -> dict:
    return {
        "legacy_id": row["id"],
        "name": row["name"],
        "email": row["email"],
        "gender": row["gender"],
        "dob": _when(row["dob"]),
        "registration_date": _when(row["registration_date"]),
        "status": row["status"],
        "document_type": row["document_type"],
        "document_number": row["document_number"],
        "country": row["country"],
        "metadata": json.loads(row["metadata"]) if row["metadata"] else None,
        "metrics_updated_at": _when(row["metrics_updated_at"]),
    }


def _balance_values(row: dict) -> dict:
    return {
        "reward_id": _uuid(row["reward_id"]),
        "amount": _decimal(row["amount"]),
        "expiration_date": _when(row["expiration_date"]),
        "brand_id": row["brand_id"],
        "channel_id": row["channel_id"],
        "store_id": row["store_id"],
        "issued_at": _when(row["issued_at"]),
        "funded_by": row["funded_by"],
    }


def _device_values(row: dict) -> dict:
    return {
        "device_token": row["device_token"],
        "platform": row["platform"],
        "model": row["model"],
        "os_version": row["os_version"],
        "expires_at": _when(row["expires_at"]),
        "created_at": _when(row["created_at"]),
    }


def _metric_values(row: dict) -> dict:
    return {
        "period": row["period"],
        "period_from": _when(row["from"]),
        "period_to": _when(row["to"]),
        "tier_id": _uuid(row["tier_id"]),
        "last_visit": _when(row["last_visit"]),
        "last_session": _when(row["last_session"]),
        "spend_total": _decimal(row["spend_total"]),
        "number_of_purchases": _int(row["number_of_purchases"]),
    }


PLAIN = {
    "customers": (StagedCustomer, _customer_values),
    "balances": (StagedBalance, _balance_values),
    "devices": (StagedDevice, _device_values),
    "metrics": (StagedMetric, _metric_values),
}


def _plain_rows(kind: str, path: Path, batch: StagingBatch) -> Iterator[dict]:
    """Each row's values by attribute name, children pointed at their customer's pk.

    The customers' pks are read at once, before the first row is asked for (a COPY in
    progress holds the connection)."""
    customers = (
        {}
        if kind == "customers"
        else dict(StagedCustomer.objects.filter(batch=batch).values_list("legacy_id", "pk"))
    )
    return _plain_values(kind, path, batch, customers)


def _plain_values(
    kind: str, path: Path, batch: StagingBatch, customers: dict[str, int]
) -> Iterator[dict]:
    _model, values = PLAIN[kind]
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            found = values(row)
            found["batch_id"] = batch.pk
            if customers:
                found["customer_id"] = customers[row["customer_id"]]
            yield found


def floor_stage(*, kind: str, path: Path, batch: StagingBatch) -> int:
    """Plain ``csv`` and ``bulk_create``, a thousand rows per INSERT, one transaction."""
    model, _values = PLAIN[kind]
    count = 0
    block: list = []
    with transaction.atomic():
        for values in _plain_rows(kind, path, batch):
            block.append(model(**values))
            if len(block) >= 1000:
                model.objects.bulk_create(block)
                count += len(block)
                block = []
        model.objects.bulk_create(block)
        count += len(block)
    return count


def copy_stage(*, kind: str, path: Path, batch: StagingBatch) -> int:
    """Plain ``csv`` and PostgreSQL's COPY through psycopg 3, one transaction."""
    model, _values = PLAIN[kind]
    columns = [f for f in model._meta.concrete_fields if not f.primary_key]
    names = ", ".join(f'"{f.column}"' for f in columns)
    count = 0
    with transaction.atomic(), connection.cursor() as cursor:
        rows = _plain_rows(kind, path, batch)
        statement = f'COPY "{model._meta.db_table}" ({names}) FROM STDIN'  # noqa: S608
        with cursor.cursor.copy(statement) as copy:
            for values in rows:
                row = []
                for field in columns:
                    value = values.get(field.attname, field.get_default())
                    if isinstance(value, dict):
                        value = json.dumps(value)
                    row.append(value)
                copy.write_row(row)
                count += 1
    return count


# --- the sending reference ------------------------------------------------------------------


def _date_time(value: str) -> str:
    return f"{value}T00:00:00Z" if len(value) == 10 else value


def _number(value: str):
    number = Decimal(value)
    return int(number) if number == number.to_integral_value() else float(value)


def _present(entry: dict) -> dict:
    return {key: value for key, value in entry.items() if value not in ("", None)}


def plain_customers(paths: dict[str, Path]) -> list[dict]:
    """The four files read with ``csv`` and grouped into the endpoint's customers."""
    customers: dict[str, dict] = {}
    with paths["customers"].open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            customer = _present(
                {
                    "id": row["id"],
                    "name": row["name"],
                    "email": row["email"],
                    "gender": row["gender"],
                    "dob": _date_time(row["dob"]) if row["dob"] else "",
                    "registration_date": row["registration_date"],
                    "status": row["status"],
                    "document_type": row["document_type"],
                    "document_number": row["document_number"],
                    "country": row["country"],
                    "metadata": json.loads(row["metadata"]) if row["metadata"] else None,
                }
            )
            if row["metrics_updated_at"]:
                customer["metrics"] = {"updated_at": row["metrics_updated_at"]}
            customers[row["id"]] = customer
    with paths["balances"].open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            balance = _present({k: v for k, v in row.items() if k != "customer_id"})
            balance["amount"] = _number(row["amount"])
            customers[row["customer_id"]].setdefault("balance", []).append(balance)
    with paths["devices"].open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            device = _present(
                {
                    "device_token": row["device_token"],
                    "device_info": _present(
                        {
                            "platform": row["platform"],
                            "model": row["model"],
                            "osVersion": row["os_version"],
                        }
                    ),
                    "expires_at": row["expires_at"],
                    "created_at": row["created_at"],
                }
            )
            customers[row["customer_id"]].setdefault("devices", []).append(device)
    with paths["metrics"].open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            period = _present(
                {
                    "from": row["from"],
                    "to": row["to"],
                    "tier_id": row["tier_id"],
                    "last_visit": row["last_visit"],
                    "last_session": row["last_session"],
                    "spend_total": _number(row["spend_total"]) if row["spend_total"] else "",
                    "number_of_purchases": int(row["number_of_purchases"])
                    if row["number_of_purchases"]
                    else "",
                }
            )
            customers[row["customer_id"]].setdefault("metrics", {})[row["period"]] = period
    return list(customers.values())


def plain_send(
    *, paths: dict[str, Path], base_url: str, auth_url: str, api_key: str, size: int = 1000
) -> dict:
    """Read, group, POST batches of ``size``; every batch must be accepted (201)."""
    started = time.perf_counter()
    customers = plain_customers(paths)
    with requests.Session() as session:
        token = session.get(auth_url, headers={"x-api-key": api_key}, timeout=30).json()["data"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for start in range(0, len(customers), size):
            body = json.dumps({"customers": customers[start : start + size]})
            answer = session.post(
                f"{base_url}/customers/migrate", data=body, headers=headers, timeout=60
            )
            if answer.status_code != 201:
                raise RuntimeError(f"batch at {start}: HTTP {answer.status_code} {answer.text}")
    return {"seconds": time.perf_counter() - started, "customers": len(customers)}
