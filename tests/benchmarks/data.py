"""The files every staging and sending benchmark reads: a legacy export of N customers.

Per customer: one row in customers.csv, two in balances.csv, one in devices.csv and one in
metrics.csv, all valid under the contract (so a staged batch validates and sends). The
values vary from row to row the way a real export's do (dates, amounts, UUIDs, metadata),
and the files are the same on every run: they are made once per size and kept under
``var/bench/data``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import uuid
from pathlib import Path

KINDS = ("customers", "balances", "devices", "metrics")
HEADERS = {
    "customers": [
        "id", "name", "email", "gender", "dob", "registration_date", "status",
        "document_type", "document_number", "country", "metadata", "metrics_updated_at",
    ],
    "balances": [
        "customer_id", "reward_id", "amount", "expiration_date", "brand_id", "channel_id",
        "store_id", "issued_at", "funded_by",
    ],
    "devices": [
        "customer_id", "device_token", "platform", "model", "os_version", "expires_at",
        "created_at",
    ],
    "metrics": [
        "customer_id", "period", "from", "to", "tier_id", "last_visit", "last_session",
        "spend_total", "number_of_purchases",
    ],
}  # fmt: skip
ROWS_PER_CUSTOMER = {"customers": 1, "balances": 2, "devices": 1, "metrics": 1}

_EPOCH = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
_GENDERS = ("MALE", "FEMALE", "OTHER")
_PLATFORMS = (("ios", "iPhone15,2", "17.1"), ("android", "Pixel 8", "14"), ("web", "", ""))
_COUNTRIES = ("CO", "MX", "PE", "CL", "AR")
_SEGMENTS = ("gold", "silver", "bronze")


def legacy_id(number: int, prefix: str = "L") -> str:
    return f"{prefix}{number:07d}"


def _when(seconds: int) -> str:
    return (_EPOCH + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _uuid(number: int, salt: int) -> str:
    # A version-4 UUID derived from the row, so every run writes the same file.
    digest = hashlib.blake2b(f"{number}:{salt}".encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def customer_row(n: int, prefix: str = "L") -> list[str]:
    return [
        legacy_id(n, prefix),
        f"Customer {n}",
        f"customer{n}.{prefix.lower()}@example.com",
        _GENDERS[n % 3],
        f"{1950 + n % 50}-{1 + n % 12:02d}-{1 + n % 28:02d}",
        _when(100_000 + n * 37),
        "ACTIVE" if n % 10 else "INACTIVE",
        "CC",
        str(10_000_000 + n),
        _COUNTRIES[n % 5],
        f'{{"source": "legacy-crm", "segment": "{_SEGMENTS[n % 3]}"}}',
        _when(190_000_000 + n),
    ]


def balance_rows(n: int, prefix: str = "L") -> list[list[str]]:
    return [
        [
            legacy_id(n, prefix),
            _uuid(n, k),
            f"{(n * 7 + k * 13) % 100_000}.{(n + k) % 100:02d}",
            _when(250_000_000 + n * 11 + k),
            f"brand-{n % 7}",
            "web" if k else "store",
            f"store-{n % 50}",
            _when(150_000_000 + n * 5 + k),
            f"brand-{n % 7}",
        ]
        for k in (1, 2)
    ]


def device_row(n: int, prefix: str = "L") -> list[str]:
    platform, model, os_version = _PLATFORMS[n % 3]
    return [
        legacy_id(n, prefix),
        f"fcm:{prefix.lower()}{n:07d}:{_uuid(n, 9)[-12:]}",
        platform,
        model,
        os_version,
        _when(240_000_000 + n),
        _when(160_000_000 + n * 3),
    ]


def metric_row(n: int, prefix: str = "L") -> list[str]:
    return [
        legacy_id(n, prefix),
        "lifetime",
        _when(0),
        _when(190_000_000),
        _uuid(n % 4, 7),
        _when(180_000_000 + n * 13),
        _when(185_000_000 + n * 17) if n % 2 else "",
        f"{n % 5000}.{n % 10}",
        str(n % 200),
    ]


def _rows(kind: str, count: int, prefix: str):
    for n in range(count):
        if kind == "customers":
            yield customer_row(n, prefix)
        elif kind == "balances":
            yield from balance_rows(n, prefix)
        elif kind == "devices":
            yield device_row(n, prefix)
        else:
            yield metric_row(n, prefix)


def files(*, customers: int, root: Path, prefix: str = "L") -> dict[str, Path]:
    """The four CSV files of ``customers`` customers (made on first use), by kind."""
    folder = root / f"{prefix}{customers}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {kind: folder / f"{kind}.csv" for kind in KINDS}
    for kind, path in paths.items():
        if path.exists():
            continue
        partial = path.with_suffix(".part")
        with partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow(HEADERS[kind])
            writer.writerows(_rows(kind, customers, prefix))
        partial.rename(path)
    return paths


def head(*, source: Path, rows: int, root: Path) -> Path:
    """The first ``rows`` rows of ``source`` (with its header) as a file of their own."""
    target = root / source.parent.name / f"{source.stem}-{rows}.csv"
    if not target.exists():
        with source.open(newline="", encoding="utf-8") as handle:
            lines = [next(handle) for _ in range(rows + 1)]
        target.write_text("".join(lines), encoding="utf-8", newline="")
    return target


def row_count(kind: str, customers: int) -> int:
    return customers * ROWS_PER_CUSTOMER[kind]


# --- the customers' history: a transactions file ----------------------------------------

TRANSACTIONS_HEADERS = [
    "customer_id", "reward_id", "type", "amount", "issued_at", "resolved_at", "brand_id",
    "store_id", "channel_id", "funded_by", "details", "cost", "event.type",
    "event.order.purchase_id", "event.order.value", "event.order.payment_method",
    "event.order.store_id",
]  # fmt: skip
_PAYMENT_METHODS = ("CREDIT", "DEBIT", "CASH", "BANK_TRANSFER")


def _balance_cents(n: int, k: int) -> int:
    """The amount of ``balance_rows(n)``'s reward ``k`` (1 or 2), in cents."""
    return (n * 7 + k * 13) % 100_000 * 100 + (n + k) % 100


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _reward_counts(n: int, per_customer: int) -> dict[int, int]:
    """How many of the customer's transactions go to each of its two rewards: half each
    (the first reward takes the odd one); a reward whose balance is 0 never gets exactly
    one (no transaction's amount is 0), the other takes it."""
    counts = {1: (per_customer + 1) // 2, 2: per_customer // 2}
    for k, other in ((1, 2), (2, 1)):
        if counts[k] == 1 and _balance_cents(n, k) == 0:
            counts[k], counts[other] = 0, counts[other] + 1
    return counts


def transaction_rows(n: int, per_customer: int, prefix: str = "L") -> list[list[str]]:
    """The ``per_customer`` transactions of customer ``n``, spread over its two rewards and
    adding up to each reward's balance (so validation finds them reconciled): purchases
    (ACCUMULATION, with the order in ``event.*``) and, where the balance is below what was
    earned, one REDEMPTION."""
    rows = []
    j = 0
    for k, count in _reward_counts(n, per_customer).items():
        amounts = [100 * (1 + (n * 31 + i * 17) % 500) + (n + i) % 100 for i in range(count - 1)]
        if count:
            last = _balance_cents(n, k) - sum(amounts)
            if last == 0:  # never 0: one cent moves from the last to the first
                amounts[0] += 1
                last = -1
            amounts.append(last)
        for cents in amounts:
            is_purchase = cents > 0
            store = f"store-{(n + j) % 50}"
            order = f"ORD-{prefix}{n:07d}-{j}"
            issued = 120_000_000 + n * 5 + j * 86_400
            rows.append(
                [
                    legacy_id(n, prefix),
                    _uuid(n, k),
                    "ACCUMULATION" if is_purchase else "REDEMPTION",
                    _money(cents),
                    _when(issued),
                    _when(issued + 5),
                    f"brand-{n % 7}",
                    store if is_purchase else "",
                    "web" if j % 2 else "store",
                    f"brand-{n % 7}" if is_purchase else "",
                    f"Purchase {order}" if is_purchase else "Reward redeemed",
                    _money(cents // 100) if is_purchase else "",
                    "PURCHASE" if is_purchase else "",
                    order if is_purchase else "",
                    _money(cents) if is_purchase else "",
                    _PAYMENT_METHODS[(n + j) % 4] if is_purchase else "",
                    store if is_purchase else "",
                ]
            )
            j += 1
    return rows


def transactions_file(*, customers: int, per_customer: int, root: Path, prefix: str = "L") -> Path:
    """The transactions of ``files(customers=...)``'s customers, ``per_customer`` each
    (made on first use, next to the four files)."""
    folder = root / f"{prefix}{customers}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"transactions-{per_customer}.csv"
    if not path.exists():
        partial = path.with_suffix(".part")
        with partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow(TRANSACTIONS_HEADERS)
            for n in range(customers):
                writer.writerows(transaction_rows(n, per_customer, prefix))
        partial.rename(path)
    return path


# --- the same data in a legacy system's own shape, read through a mapping -----------------

_BOGOTA = dt.timezone(dt.timedelta(hours=-5), "America/Bogota")  # no daylight saving time
_GENDER_CODES = {"MALE": "H", "FEMALE": "M", "OTHER": "O"}
_STATUS_CODES = {"ACTIVE": "A", "INACTIVE": "I"}
FOREIGN_NAMES = {"customers": "clientes.csv", "balances": "saldos.csv"}
FOREIGN_HEADERS = {
    "customers": [
        "Código", "Nombre", "Apellidos", "Correo", "Sexo", "F. nacimiento", "Alta", "Estado",
        "Tipo documento", "Número documento", "País", "Metadatos", "Métricas actualizadas",
    ],
    "balances": [
        "Código cliente", "Recompensa", "Saldo", "Vencimiento", "Marca", "Canal", "Tienda",
        "Emitido", "Financiado por",
    ],
}  # fmt: skip
# Modelled on docs/samples/legacy-es/clientes.mapping.json and saldos.mapping.json.
_LOCAL = {"date_format": "%d/%m/%Y %H:%M:%S", "timezone": "America/Bogota"}
MAPPINGS = {
    "customers": {
        "kind": "customers",
        "fields": {
            "id": "Código",
            "name": {"join": ["Nombre", "Apellidos"], "separator": " "},
            "email": {"column": "Correo", "lower": True},
            "gender": {"column": "Sexo", "values": {"H": "MALE", "M": "FEMALE", "O": "OTHER"}},
            "dob": {"column": "F. nacimiento", "date_format": "%d/%m/%Y"},
            "registration_date": {"column": "Alta", **_LOCAL},
            "status": {"column": "Estado", "values": {"A": "ACTIVE", "I": "INACTIVE"}},
            "document_type": "Tipo documento",
            "document_number": "Número documento",
            "country": "País",
            "metadata": "Metadatos",
            "metrics_updated_at": {"column": "Métricas actualizadas", **_LOCAL},
        },
        "unmapped": "refuse",
    },
    "balances": {
        "kind": "balances",
        "timezone": "America/Bogota",
        "fields": {
            "customer_id": "Código cliente",
            "reward_id": "Recompensa",
            "amount": {"column": "Saldo", "decimal_separator": ",", "thousands_separator": "."},
            "expiration_date": {"column": "Vencimiento", "date_format": _LOCAL["date_format"]},
            "brand_id": "Marca",
            "channel_id": "Canal",
            "store_id": "Tienda",
            "issued_at": {"column": "Emitido", "date_format": _LOCAL["date_format"]},
            "funded_by": "Financiado por",
        },
        "unmapped": "refuse",
    },
}


def _local(moment: str) -> str:
    """``2019-01-02T03:04:05Z`` as Bogotá's wall clock, ``01/01/2019 22:04:05``."""
    when = dt.datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S%z").astimezone(_BOGOTA)
    return when.strftime(_LOCAL["date_format"])


def _comma_decimal(amount: str) -> str:
    """``12345.67`` as ``12.345,67``."""
    whole, _point, decimals = amount.partition(".")
    return f"{int(whole):,}".replace(",", ".") + "," + decimals


def foreign_customer_row(n: int, prefix: str = "L") -> list[str]:
    """``customer_row(n)`` as the legacy system writes it: the name split, the email in
    mixed case, gender and status coded, local dates written day first."""
    (legacy, name, email, gender, dob, registered, status, *document, metadata, updated) = (
        customer_row(n, prefix)
    )
    first, _space, last = name.partition(" ")
    year, month, day = dob.split("-")
    return [
        legacy,
        first,
        last,
        email.replace("customer", "Customer", 1).replace("example.com", "Example.com"),
        _GENDER_CODES[gender],
        f"{day}/{month}/{year}",
        _local(registered),
        _STATUS_CODES[status],
        *document,
        metadata,
        _local(updated),
    ]


def foreign_balance_row(row: list[str]) -> list[str]:
    legacy, reward, amount, expires, brand, channel, store, issued, funded = row
    return [
        legacy, reward, _comma_decimal(amount), _local(expires), brand, channel, store,
        _local(issued), funded,
    ]  # fmt: skip


def _foreign_rows(kind: str, count: int, prefix: str):
    for n in range(count):
        if kind == "customers":
            yield foreign_customer_row(n, prefix)
        else:
            yield from (foreign_balance_row(row) for row in balance_rows(n, prefix))


def foreign_files(
    *, customers: int, root: Path, prefix: str = "L", kinds: tuple[str, ...] = tuple(FOREIGN_NAMES)
) -> dict[str, Path]:
    """``kinds`` (customers, balances) of ``files(customers=...)`` in a legacy system's
    shape (semicolons, Spanish headers; ``MAPPINGS`` reads them), made on first use."""
    folder = root / f"{prefix}{customers}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {kind: folder / FOREIGN_NAMES[kind] for kind in kinds}
    for kind, path in paths.items():
        if path.exists():
            continue
        partial = path.with_suffix(".part")
        with partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter=";", lineterminator="\r\n")
            writer.writerow(FOREIGN_HEADERS[kind])
            writer.writerows(_foreign_rows(kind, customers, prefix))
        partial.rename(path)
    return paths
