"""Validation of the items of a `prices` command (IO-free): one bad item never sinks the batch.

Item shape (docs/asyncapi.yaml `PricesParams`): `sku`, `price` (decimal string), `currency`
(ISO 4217), optional `promo_price`, `unit_price` with `unit_basis` (shelf-price law: per kg,
100 g, l, 100 ml or piece), `valid_from`/`valid_to` (RFC 3339 with an offset), and `version`
(an integer increasing per SKU). Money is a decimal string, never a JSON number
(contract.md "Uplink payloads": floats cannot carry 12.90 exactly).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

FIELDS = frozenset(
    {
        "sku",
        "price",
        "currency",
        "promo_price",
        "unit_price",
        "unit_basis",
        "valid_from",
        "valid_to",
        "version",
    }
)
UNIT_BASES = ("kg", "100g", "l", "100ml", "piece")
_MONEY = re.compile(r"\d{1,9}(\.\d{1,4})?")
# RFC 3339 §5.6 date-time; the offset is required (a local time would depend on the AP).
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
# ISO 4217 active alphabetic codes (list one, 2024), so a typo such as 'EUO' is refused.
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR
    ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD
    MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR
    PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF
    XCD XOF XPF XSU YER ZAR ZMW ZWG ZWL""".split()  # noqa: SIM905 - laid out like the standard's table
)


class ItemRejected(Exception):  # noqa: N818 - reads as the outcome it reports
    """One item is invalid: a stable `reason` code and a sentence a person can act on."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class PriceItem:
    """One valid item, normalised (times as UTC epoch seconds)."""

    sku: str
    price: str
    currency: str
    version: int
    promo_price: str | None = None
    unit_price: str | None = None
    unit_basis: str | None = None
    valid_from: float | None = None
    valid_to: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without empty fields (the store keeps it)."""
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PriceItem:
        """Back from `to_dict()`."""
        return cls(**data)


def _money(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _MONEY.fullmatch(value):
        raise ItemRejected(
            "invalid_value",
            f"'{key}' must be a decimal string such as \"12.90\" (not a JSON number), "
            f"got {value!r:.40}.",
        )
    return value


def _time(item: dict[str, Any], key: str) -> float | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ItemRejected(
            "invalid_value",
            f"'{key}' must be an RFC 3339 time with an offset, e.g. "
            f'"2026-03-01T08:00:00Z", got {value!r:.40}.',
        )
    try:
        return datetime.fromisoformat(value.replace("z", "Z").replace(" ", "T")).timestamp()
    except ValueError as exc:
        raise ItemRejected("invalid_value", f"'{key}' is not a real time: {exc}.") from None


def validate_item(item: Any, known_sku: Callable[[str], bool], now: float) -> PriceItem:
    """The item as a `PriceItem`, or `ItemRejected` naming the first problem."""
    if not isinstance(item, dict):
        raise ItemRejected("invalid_value", "Each item must be a JSON object.")
    unknown = sorted(set(item) - FIELDS)
    if unknown:
        raise ItemRejected(
            "invalid_value",
            f"Unknown field(s) {', '.join(map(repr, unknown))}; an item has "
            f"{', '.join(sorted(FIELDS))}.",
        )
    for key in ("sku", "price", "currency", "version"):
        if key not in item:
            raise ItemRejected("missing_field", f"The item has no {key!r}.")
    sku = item["sku"]
    if not isinstance(sku, str) or not sku:
        raise ItemRejected("invalid_value", "'sku' must be a non-empty string.")
    if not known_sku(sku):
        raise ItemRejected("unknown_sku", f"SKU {sku!r:.40} is not in this store's catalog.")
    price = _money(item, "price")
    assert price is not None
    currency = item["currency"]
    if not isinstance(currency, str) or currency not in ISO_4217:
        raise ItemRejected(
            "invalid_value",
            f"'currency' must be an ISO 4217 code such as EUR, got {currency!r:.20}.",
        )
    version = item["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ItemRejected("invalid_value", "'version' must be a non-negative integer.")
    promo = _money(item, "promo_price")
    if promo is not None and Decimal(promo) >= Decimal(price):
        raise ItemRejected(
            "invalid_value", f"'promo_price' {promo} must be lower than 'price' {price}."
        )
    unit_price = _money(item, "unit_price")
    basis = item.get("unit_basis")
    if (unit_price is None) != (basis is None):
        raise ItemRejected(
            "invalid_value", "'unit_price' and 'unit_basis' go together: give both or neither."
        )
    if basis is not None and basis not in UNIT_BASES:
        raise ItemRejected(
            "invalid_value",
            f"'unit_basis' must be one of {', '.join(UNIT_BASES)}, got {basis!r:.20}.",
        )
    valid_from = _time(item, "valid_from")
    valid_to = _time(item, "valid_to")
    if valid_to is not None:
        if valid_from is not None and valid_to <= valid_from:
            raise ItemRejected("invalid_value", "'valid_to' must be after 'valid_from'.")
        if valid_to <= now:
            raise ItemRejected("expired", "'valid_to' is already in the past.")
    return PriceItem(
        sku=sku,
        price=price,
        currency=currency,
        version=version,
        promo_price=promo,
        unit_price=unit_price,
        unit_basis=basis,
        valid_from=valid_from,
        valid_to=valid_to,
    )
