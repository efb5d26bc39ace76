"""Shelf scales: which SKU a scale weighs (config fields), and its weights as a unit count.

A scale driver mixes `ShelfScaleFields` into its `Config`; the inventory service finds every
device that names a `sku` and feeds its `WeightSample`s to a `ShelfScaleCounter`, which turns
them into a filtered count with `gateway.shelf` (only stable readings, hysteresis, a
confidence that drops off whole multiples of the unit weight).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from gateway.shelf import StableFilter, units_on_shelf

if TYPE_CHECKING:
    from gateway.events import WeightSample


class ShelfScaleFields(BaseModel):
    """Config fields of a scale that carries one SKU's shelf (mixed into a driver's `Config`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str | None = Field(
        None,
        min_length=1,
        description=(
            "The catalog SKU on this scale's shelf: its weight becomes that SKU's on-shelf "
            "count (the catalog entry needs unit_weight). Leave out for a scale that is no shelf."
        ),
    )
    tare: float = Field(
        0.0,
        ge=0,
        le=10_000,
        description="Weight in kg of what is always on the scale (tray, divider), not units.",
    )
    count_hold: int = Field(
        3,
        ge=1,
        le=100,
        description="Stable readings in a row a new count must show before it is believed.",
    )
    count_jump: int = Field(
        2,
        ge=0,
        le=10_000,
        description="A count change larger than this many units is believed at once.",
    )
    min_confidence: float = Field(
        0.5,
        ge=0,
        le=1,
        description=(
            "Readings whose weight sits this far from a whole number of units are ignored "
            "(1 = exactly on a multiple of the unit weight, 0 = half-way between two)."
        ),
    )


@dataclass(frozen=True, slots=True)
class ScaleCount:
    """A scale's accepted count, how sure it is, and the wall time of the reading behind it."""

    count: int
    confidence: float
    ts: float


class ShelfScaleCounter:
    """One shelf scale's weights → an accepted unit count (hysteresis per `gateway.shelf`)."""

    __slots__ = (
        "_filter",
        "_min_confidence",
        "device",
        "last",
        "last_seen",
        "sku",
        "tare",
        "unit_weight",
    )

    def __init__(self, device: str, sku: str, unit_weight: float, fields: ShelfScaleFields) -> None:
        """Bind `device` to `sku`; raises ValueError for a unit weight that is not positive."""
        if not unit_weight > 0 or not math.isfinite(unit_weight):
            raise ValueError(f"unit weight must be a positive number of kg, got {unit_weight!r}")
        self.device = device
        self.sku = sku
        self.unit_weight = unit_weight
        self.tare = fields.tare
        self._min_confidence = fields.min_confidence
        self._filter = StableFilter(fields.count_hold, fields.count_jump, fields.min_confidence)
        self.last: ScaleCount | None = None
        """The accepted count and the reading that last confirmed it."""
        self.last_seen: float | None = None
        """Wall time of the last usable (fault-free) sample, stable or not."""

    def update(self, sample: WeightSample) -> ScaleCount | None:
        """Offer one sample; returns the accepted count afterwards (None before the first)."""
        if sample.fault is not None or not math.isfinite(sample.weight_kg):
            return self.last
        self.last_seen = sample.ts
        count, confidence = units_on_shelf(sample.weight_kg, self.tare, self.unit_weight)
        before = self._filter.count
        accepted = self._filter.update(count, sample.stable, confidence)
        if accepted is None:
            return self.last
        agrees = sample.stable and count == accepted and confidence >= self._min_confidence
        if accepted != before or agrees:
            # A stable reading that agrees with the count re-confirms it (its age restarts).
            self.last = ScaleCount(accepted, confidence, sample.ts)
        return self.last
