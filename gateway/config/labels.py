"""The `labels:` section: how prices look on shelf labels and how uploads are paced and retried.

Defaults follow protocols.md §5.1 (the Home Assistant integration's pacing: one upload at a
time, >= 1 s apart, 30 s timeout, retries with exponential backoff) and contract.md "Labels".
"""

from __future__ import annotations

import string
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator

from gateway.config.fields import As
from gateway.config.sections import Section
from gateway.config.types import duration

# The placeholders each template line may use (pricing fills them, already formatted).
PLACEHOLDERS = frozenset(
    {"name", "sku", "price", "promo", "unit_price", "basis", "currency", "regular"}
)


class CurrencyFormat(Section):
    """How amounts of one currency are written: `¥12.90`, `12,90 €`, `$1,299.00`."""

    pattern: str = Field(
        "{amount} {code}", description="Text around the amount: '{amount}' and '{code}'."
    )
    decimal: str = Field(".", max_length=1, description="Decimal separator.")
    thousands: str = Field("", max_length=1, description="Thousands separator ('' for none).")
    digits: int = Field(2, ge=0, le=4, description="Digits after the decimal separator.")

    @field_validator("pattern")
    @classmethod
    def _has_amount(cls, value: str) -> str:
        _check_fields(value, {"amount", "code"})
        if "{amount}" not in value:
            raise ValueError("the pattern must contain '{amount}'")
        return value


def _default_currencies() -> dict[str, CurrencyFormat]:
    def fmt(
        pattern: str, decimal: str = ".", thousands: str = "", digits: int = 2
    ) -> CurrencyFormat:
        return CurrencyFormat(pattern=pattern, decimal=decimal, thousands=thousands, digits=digits)

    return {
        "CNY": fmt("¥{amount}"),
        "JPY": fmt("¥{amount}", thousands=",", digits=0),
        "EUR": fmt("{amount} €", decimal=","),
        "USD": fmt("${amount}", thousands=","),
        "GBP": fmt("£{amount}", thousands=","),
        "CHF": fmt("CHF {amount}"),
    }


def _check_fields(text: str, allowed: set[str] | frozenset[str]) -> None:
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    except ValueError as exc:
        raise ValueError(f"not a valid template: {exc}") from None
    unknown = sorted(names - allowed)
    if unknown:
        raise ValueError(
            f"unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
            f"use {', '.join('{' + a + '}' for a in sorted(allowed))}"
        )


class LabelTemplate(Section):
    """The text lines a label shows; drivers place them (layout is the driver's business)."""

    title: str = Field("{name}", description="Product line, e.g. '{name}'.")
    price: str = Field("{price}", description="Main price line (the regular price).")
    promo: str = Field(
        "{promo}", description="Promotion line, shown only when the item has a promo_price."
    )
    unit_price: str = Field(
        "{unit_price} / {basis}",
        description="Unit price line (shelf-price law), shown only when the item has one.",
    )
    basis_names: dict[str, str] = Field(
        default_factory=lambda: {
            "kg": "kg",
            "100g": "100 g",
            "l": "l",
            "100ml": "100 ml",
            "piece": "piece",
        },
        description="How each unit basis is written on the label.",
    )
    currencies: dict[str, CurrencyFormat] = Field(
        default_factory=_default_currencies,
        description="Per ISO 4217 code; others use '{amount} {code}' with 2 digits.",
    )

    @field_validator("title", "price", "promo", "unit_price")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        _check_fields(value, PLACEHOLDERS)
        return value


class LabelRetry(Section):
    """Retries of one label's upload (not accepted, failed, or not confirmed in time)."""

    initial: Annotated[float, As(duration("100ms", "1h"))] = Field(
        2.0, description="First delay before uploading again."
    )
    max: Annotated[float, As(duration("100ms", "1d"))] = Field(
        300.0, description="The delay never grows beyond this."
    )
    attempts: int = Field(5, ge=1, le=100, description="Uploads per label before it is failed.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max < self.initial:
            raise ValueError("'max' must not be shorter than 'initial'")
        return self


class LabelsConfig(Section):
    """Electronic shelf labels: price commands become label uploads (issue 6)."""

    default_device: str | None = Field(
        None,
        description="Label device for catalog label ids without a 'device/' prefix; "
        "default: the only label device.",
    )
    template: LabelTemplate = Field(
        default_factory=LabelTemplate, description="What the label says and how money looks."
    )
    pause: Annotated[float, As(duration("0s", "1m"))] = Field(
        1.0, description="Pause between two uploads to one label device (the AP is a small MCU)."
    )
    upload_timeout: Annotated[float, As(duration("100ms", "5m"))] = Field(
        30.0, description="How long one upload may take before it counts as failed."
    )
    confirm_timeout: Annotated[float, As(duration("1s", "1d"))] = Field(
        600.0,
        description="Upload again when a label has not confirmed this long after an upload "
        "(about 3 check-in intervals for OpenEPaperLink).",
    )
    retry: LabelRetry = Field(default_factory=LabelRetry, description="Upload retries.")
