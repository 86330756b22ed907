"""Suggested mappings: which column of a file feeds which field, how sure that is, and the
values and date formats found in the file.

Headers are compared by their text key (case, accents, spaces and punctuation ignored)
with each field's own name and its English and Spanish synonyms. The same key as the name
or a synonym is *certain*; a header that contains one as whole words is *likely*. A
profile last used for the same set of headers (``header_signature``) wins over both: it
is what the operator chose for such a file before. Only certain suggestions are applied
without asking.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from customers.formats import ANNOTATION_COLUMN, header_key
from customers.mapping.targets import Target, kind_targets

CERTAIN = "certain"
LIKELY = "likely"

_SHARED_CUSTOMER = (
    "codigo cliente",
    "id cliente",
    "cliente",
    "customer",
    "customer id",
    "codigo",
    "client id",
)
_RESOLVED = ("fecha de resolucion", "fecha resolucion", "resuelto", "resolved",
             "fecha de aplicacion", "fecha aplicacion", "aplicado")  # fmt: skip


def _order_synonyms(prefix: str) -> dict[str, tuple[str, ...]]:
    """An order's fields (``order.`` in events, ``event.order.`` in transactions)."""
    return {
        f"{prefix}purchase_id": ("pedido", "id pedido", "numero de pedido", "orden", "compra",
                                 "factura", "ticket", "order id", "purchase id"),
        f"{prefix}value": ("valor compra", "total compra", "valor del pedido", "valor pedido",
                           "monto compra", "order value", "order total"),
        f"{prefix}discounted_value": ("valor con descuento", "total con descuento",
                                      "discounted value"),
        f"{prefix}payment_method": ("medio de pago", "forma de pago", "metodo de pago", "pago",
                                    "payment method", "payment"),
        f"{prefix}channel_id": ("canal", "canal de venta", "channel"),
        f"{prefix}store_id": ("tienda", "sucursal", "store"),
        f"{prefix}products": ("productos", "articulos", "items", "products"),
        f"{prefix}shipping.value": ("envio", "valor envio", "costo envio", "costo de envio",
                                    "shipping", "shipping value"),
        f"{prefix}shipping.discounted_value": ("envio con descuento",
                                               "shipping discounted value"),
        f"{prefix}redeem": ("canjes", "redenciones"),
        f"{prefix}metadata": ("metadatos", "meta"),
    }  # fmt: skip


SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "customers": {
        "id": ("codigo", "cod cliente", "codigo cliente", "id cliente", "customer id", "client id",
               "legacy id", "numero de cliente", "numero cliente", "identificador"),
        "name": ("nombre", "nombre completo", "full name", "customer name", "nombre cliente"),
        "email": ("correo", "correo electronico", "e mail", "email address", "mail",
                  "e mail address"),
        "gender": ("sexo", "genero", "sex"),
        "dob": ("fecha de nacimiento", "f nacimiento", "fecha nacimiento", "nacimiento",
                "birth date", "birthdate", "date of birth", "birthday", "fecha nac"),
        "registration_date": ("alta", "fecha de alta", "fecha alta", "f alta", "fecha de registro",
                              "fecha registro", "registro", "registered at", "registration",
                              "signup date", "sign up date", "join date"),
        "status": ("estado", "estatus", "state"),
        "document_type": ("tipo de documento", "tipo documento", "tipo doc", "document type",
                          "id type"),
        "document_number": ("numero de documento", "numero documento", "documento", "nro documento",
                            "doc number", "document", "id number", "cedula"),
        "country": ("pais", "country code", "codigo pais"),
        "metadata": ("metadatos", "meta"),
        "metrics_updated_at": ("metricas actualizadas", "metrics updated", "fecha metricas"),
    },
    "balances": {
        "customer_id": _SHARED_CUSTOMER,
        "reward_id": ("recompensa", "id recompensa", "reward", "programa", "premio"),
        "amount": ("saldo", "puntos", "monto", "cantidad", "balance", "points", "importe"),
        "expiration_date": ("vencimiento", "fecha de vencimiento", "fecha vencimiento", "caducidad",
                            "expira", "expiry date", "expires", "expiration"),
        "brand_id": ("marca", "brand"),
        "channel_id": ("canal", "channel"),
        "store_id": ("tienda", "store", "sucursal"),
        "issued_at": ("emitido", "fecha de emision", "fecha emision", "issued", "emision"),
        "funded_by": ("financiado por", "fondeado por", "funded"),
    },
    "devices": {
        "customer_id": _SHARED_CUSTOMER,
        "device_token": ("token", "token dispositivo", "token del dispositivo", "push token"),
        "platform": ("plataforma", "sistema", "so", "os"),
        "model": ("modelo", "dispositivo", "device model"),
        "os_version": ("version so", "version del sistema", "version", "os version"),
        "expires_at": ("expira", "vence", "vencimiento", "expires"),
        "created_at": ("creado", "fecha de creacion", "fecha creacion", "created"),
    },
    "metrics": {
        "customer_id": _SHARED_CUSTOMER,
        "period": ("periodo",),
        "from": ("desde", "inicio", "start"),
        "to": ("hasta", "fin", "end"),
        "tier_id": ("nivel", "id nivel", "tier", "categoria"),
        "last_visit": ("ultima visita", "last visit date"),
        "last_session": ("ultima sesion", "last session date"),
        "spend_total": ("gasto total", "total gastado", "gasto", "spend", "total spend"),
        "number_of_purchases": ("compras", "numero de compras", "purchases", "num compras"),
    },
    "transactions": {
        "customer_id": _SHARED_CUSTOMER,
        "reward_id": ("recompensa", "id recompensa", "reward", "programa", "premio"),
        "type": ("tipo", "tipo de transaccion", "tipo transaccion", "tipo de movimiento",
                 "tipo movimiento", "movimiento", "transaction type"),
        "amount": ("puntos", "monto", "cantidad", "importe", "points"),
        "issued_at": ("fecha", "fecha de transaccion", "fecha transaccion", "fecha de emision",
                      "fecha emision", "emitido", "issued", "transaction date", "date"),
        "resolved_at": _RESOLVED,
        "brand_id": ("marca", "brand"),
        "store_id": ("tienda", "store", "sucursal"),
        "channel_id": ("canal", "channel"),
        "funded_by": ("financiado por", "fondeado por", "funded"),
        "details": ("detalle", "detalles", "descripcion", "concepto", "description", "notes"),
        "cost": ("costo", "coste"),
        "event.type": ("tipo de evento", "tipo evento", "evento", "event type"),
        **_order_synonyms("event.order."),
    },
    "events": {
        "customer_id": _SHARED_CUSTOMER,
        "type": ("tipo", "tipo de evento", "tipo evento", "evento", "event type"),
        "fulfilled": ("cumplido", "completado", "entregado", "realizado", "completed"),
        "issued_at": ("fecha", "fecha de compra", "fecha compra", "fecha del evento",
                      "fecha evento", "fecha de emision", "fecha emision", "emitido", "issued",
                      "event date", "purchase date", "date"),
        "resolved_at": _RESOLVED,
        "brand_id": ("marca", "brand"),
        **_order_synonyms("order."),
    },
}  # fmt: skip

# File values that certainly mean a choice value (text keys), by field.
VALUE_SYNONYMS: dict[str, dict[str, str]] = {
    "gender": {"hombre": "MALE", "masculino": "MALE", "varon": "MALE", "man": "MALE",
               "mujer": "FEMALE", "femenino": "FEMALE", "woman": "FEMALE",
               "otro": "OTHER", "otra": "OTHER"},
    "status": {"activo": "ACTIVE", "activa": "ACTIVE", "inactivo": "INACTIVE",
               "inactiva": "INACTIVE", "enabled": "ACTIVE", "disabled": "INACTIVE"},
    "platform": {"iphone": "ios", "apple": "ios", "navegador": "web", "browser": "web"},
    "period": {"total": "lifetime", "historico": "lifetime", "este ano": "this_year",
               "ano actual": "this_year", "ano anterior": "last_year", "ano pasado": "last_year",
               "este mes": "this_month", "mes actual": "this_month", "mes anterior": "last_month",
               "mes pasado": "last_month"},
    "type": {"acumulacion": "ACCUMULATION", "acumulado": "ACCUMULATION", "earn": "ACCUMULATION",
             "canje": "REDEMPTION", "redencion": "REDEMPTION", "redeem": "REDEMPTION",
             "vencimiento": "EXPIRATION", "expiracion": "EXPIRATION", "expiry": "EXPIRATION",
             "migracion": "MIGRATION", "transferencia": "TRANSFER", "reverso": "REVERSAL",
             "reversion": "REVERSAL", "anulacion": "REVERSAL"},
    "fulfilled": {"si": "true", "yes": "true", "verdadero": "true", "cumplido": "true",
                  "no": "false", "falso": "false"},
    **dict.fromkeys(("order.payment_method", "event.order.payment_method"), {
        "credito": "CREDIT", "tarjeta de credito": "CREDIT", "credit card": "CREDIT",
        "debito": "DEBIT", "tarjeta de debito": "DEBIT", "debit card": "DEBIT",
        "efectivo": "CASH", "transferencia": "BANK_TRANSFER",
        "transferencia bancaria": "BANK_TRANSFER", "otro": "OTHER", "otra": "OTHER"}),
}  # fmt: skip

DATE_FORMATS = (
    "%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y", "%m-%d-%Y", "%d.%m.%Y", "%Y/%m/%d",
    "%d/%m/%y", "%m/%d/%y",
)  # fmt: skip
TIME_FORMATS = ("", " %H:%M", " %H:%M:%S", "T%H:%M:%S")
_WORDS = re.compile(r"[^0-9a-z]+")


def text_key(value) -> str:
    """Text compared loosely: no accents, case-folded, punctuation and spaces as one space."""
    decomposed = unicodedata.normalize("NFKD", str(value if value is not None else ""))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return _WORDS.sub(" ", plain).strip()


def header_signature(*, kind: str, headers: list[str]) -> str:
    """The set of a file's headers (in any order), as a key that remembers a profile."""
    keys = sorted({header_key(h) for h in headers if header_key(h)})
    return hashlib.sha256("\x1f".join([kind, *keys]).encode()).hexdigest()


@dataclass(frozen=True)
class ColumnMatch:
    column: str  # the header as the file writes it
    certainty: str  # CERTAIN or LIKELY


@dataclass
class Suggestion:
    """What the console proposes for a file: a column per field, and what is left over."""

    kind: str
    matches: dict[str, ColumnMatch] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    profile: object = None  # the MappingProfile remembered for these headers, if any

    @property
    def is_certain(self) -> bool:
        """Every header is used and every required field found, all with certainty."""
        targets = kind_targets(self.kind)
        required = [name for name, target in targets.items() if target.required]
        return (
            not self.unmatched
            and all(name in self.matches for name in required)
            and all(m.certainty == CERTAIN for m in self.matches.values())
        )

    def document(self, *, certain_only: bool = False) -> dict:
        """The suggestion as a mapping document to use or edit."""
        if self.profile is not None:
            return self.profile.document
        fields = {
            name: match.column
            for name, match in self.matches.items()
            if match.certainty == CERTAIN or not certain_only
        }
        return {"kind": self.kind, "fields": fields, "unmapped": "refuse"}


def _score(header: str, names: tuple[str, ...]) -> str | None:
    key = text_key(header)
    if not key:
        return None
    if key in names:
        return CERTAIN
    padded = f" {key} "
    if any(f" {name} " in padded for name in names if len(name) > 2):
        return LIKELY
    return None


def _names(kind: str, target: str) -> tuple[str, ...]:
    return (text_key(target), *(text_key(s) for s in SYNONYMS[kind].get(target, ())))


def columns_suggest(*, kind: str, headers: list[str]) -> Suggestion:
    """Match each field of ``kind`` with at most one header, certain matches first."""
    suggestion = Suggestion(kind=kind)
    free = [h for h in headers if header_key(h) and header_key(h) != ANNOTATION_COLUMN]
    for certainty in (CERTAIN, LIKELY):
        for target in kind_targets(kind):
            if target in suggestion.matches:
                continue
            names = _names(kind, target)
            found = next((h for h in free if _score(h, names) == certainty), None)
            if found is not None:
                suggestion.matches[target] = ColumnMatch(column=found, certainty=certainty)
                free.remove(found)
    suggestion.unmatched = free
    return suggestion


def headers_are_own(*, kind: str, headers: list[str]) -> bool:
    """Every header is one of the kind's own column names (the console's own file)."""
    own = {*kind_targets(kind), ANNOTATION_COLUMN}
    return all(header_key(h) in own for h in headers if header_key(h))


def values_suggest(*, target: Target, found: Counter) -> dict[str, str]:
    """For a choice field: the file values that certainly mean one of its values."""
    choices = target.choices()
    by_key = {text_key(c): c for c in choices}
    synonyms = VALUE_SYNONYMS.get(target.name, {})
    suggested = {}
    for value in found:
        key = text_key(value)
        match = by_key.get(key) or synonyms.get(key)
        if match in choices:
            suggested[str(value)] = match
    return suggested


@dataclass(frozen=True)
class DateFormatGuess:
    format: str  # "" when no format reads every sample
    ambiguous: bool  # day and month could be either way round


def date_format_suggest(samples: list) -> DateFormatGuess:
    """A ``strptime`` format that reads every sampled text value; spreadsheet dates and
    ISO 8601 text need none."""
    texts = [s.strip() for s in samples if isinstance(s, str) and s.strip()]
    if not texts:
        return DateFormatGuess(format="", ambiguous=False)
    fitting = []
    for date_part in DATE_FORMATS:
        for time_part in TIME_FORMATS:
            fmt = date_part + time_part
            if all(_reads(text, fmt) for text in texts):
                fitting.append(fmt)
    if not fitting or fitting[0].startswith("%Y-%m-%d"):
        return DateFormatGuess(format="", ambiguous=False)
    day_first = [f for f in fitting if f.startswith("%d")]
    month_first = [f for f in fitting if f.startswith("%m")]
    return DateFormatGuess(format=fitting[0], ambiguous=bool(day_first and month_first))


def _reads(text: str, fmt: str) -> bool:
    try:
        dt.datetime.strptime(text, fmt)  # noqa: DTZ007 - only whether it reads
    except ValueError:
        return False
    return True
