"""Section models for the store's data and remote control: catalog, aggregation, commands."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from gateway.config.fields import As
from gateway.config.sections import Section
from gateway.config.types import duration, format_duration, size

_DAY = 86_400.0
_GTIN = re.compile(r"\d{8}|\d{12}|\d{13}|\d{14}")
_ED25519_KEY_BYTES = 32


def gtin_check_digit(body: str) -> int:
    """GS1 check digit for the digits before it (GS1 General Specifications §7.9.1)."""
    # Weights 3,1,3,1,... from the rightmost digit of the body.
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def _gtin(value: str) -> str:
    if not _GTIN.fullmatch(value):
        raise ValueError(f"'{value}' is not a GTIN: expected 8, 12, 13 or 14 digits")
    expected = gtin_check_digit(value[:-1])
    if int(value[-1]) != expected:
        raise ValueError(f"'{value}' has a wrong check digit: expected {expected}, not {value[-1]}")
    return value


def _divides_day(seconds: float) -> float:
    # Windows are aligned to midnight, so a window must tile the day exactly.
    if seconds <= 0 or round(_DAY / seconds, 9) % 1:
        raise ValueError(
            f"{format_duration(seconds)} does not divide a day evenly: "
            "use e.g. 1m, 5m, 15m, 30m, 1h"
        )
    return seconds


Gtin = Annotated[str, AfterValidator(_gtin), Field(json_schema_extra={"pattern": r"^\d{8,14}$"})]
Window = Annotated[float, As(duration("1s", "1d")), AfterValidator(_divides_day)]


class Sku(Section):
    """One article the store sells."""

    sku: str = Field(min_length=1, description="The store's article number (kept as text).")
    name: str = Field(min_length=1, description="Name as printed on receipts and labels.")
    gtin: Gtin | None = Field(None, description="GTIN-8/12/13/14 barcode, with check digit.")
    plu: str | None = Field(None, description="Price look-up code used at the scale or till.")
    zone: str | None = Field(None, description="Shelf or zone where it is stocked.")
    shelf_capacity: int | None = Field(None, ge=1, description="Units that fit on the shelf.")
    unit_weight: float | None = Field(None, gt=0, description="Weight of one unit in kg.")
    labels: list[str] = Field(default_factory=list, description="Shelf label ids showing it.")


class CatalogConfig(Section):
    """Articles known to this store."""

    currency: str = Field(
        "EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code for prices."
    )
    skus: list[Sku] = Field(default_factory=list, description="The articles.")


class AggregationConfig(Section):
    """How readings are summarised into telemetry windows."""

    window: Window = Field(60.0, description="Telemetry window; must divide a day evenly.")
    device_windows: dict[str, Window] = Field(
        default_factory=dict, description="Per-device window, by device id."
    )


def _public_key(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None
    if len(raw) != _ED25519_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return value


class CommandsConfig(Section):
    """Commands from the cloud: size limit, replay window, signatures."""

    max_size: Annotated[int, As(size("1KB", "16MB"))] = Field(
        128_000, description="Largest command accepted in one piece."
    )
    remember: Annotated[float, As(duration("1m", "90d"))] = Field(
        604_800.0,
        description=(
            "How long command ids are remembered to drop repeats; finished price commands "
            "and their label history are kept as long."
        ),
    )
    public_keys: list[Annotated[str, AfterValidator(_public_key)]] = Field(
        default_factory=list, description="Base64 Ed25519 public keys (32 bytes) of signers."
    )
    require_signature: bool = Field(
        default=False, description="Reject commands without a valid 'sig'."
    )

    @field_validator("require_signature")
    @classmethod
    def _needs_keys(cls, value: bool, info: ValidationInfo) -> bool:
        if value and "public_keys" in info.data and not info.data["public_keys"]:
            raise ValueError("signatures are required but 'public_keys' is empty")
        return value
