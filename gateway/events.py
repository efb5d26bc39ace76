"""Typed events that drivers produce: frozen, slotted dataclasses.

Every event carries the time it was acquired as `ts` (UTC wall clock, seconds since the
epoch, float) and `mono` (monotonic seconds, for ordering and intervals that must not jump
when NTP steps the wall clock). Drivers take both from `ctx.clock.now()` at the moment the
bytes arrived, not when the event is processed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from decimal import Decimal


class Quality(StrEnum):
    """How far a value can be trusted (OPC UA's three-way split)."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one metric from a meter or sensor.

    `counter` marks a cumulative quantity (energy, water volume): the aggregator turns it
    into per-window deltas that survive a reset; `wrap` is the value at which the device's
    counter rolls over to zero, when known.
    """

    device: str
    metric: str
    value: float
    unit: str
    ts: float
    mono: float
    quality: Quality = Quality.GOOD
    counter: bool = False
    wrap: float | None = None


@dataclass(frozen=True, slots=True)
class Readings:
    """All the readings of one poll of one device, handed over as one event.

    A meter poll yields tens of values at once; one queue slot and one wake-up for all of
    them instead of one each (`DriverContext.emit_readings`). The pipeline treats every
    reading inside exactly as if it had been emitted on its own.
    """

    readings: tuple[Reading, ...]


@dataclass(frozen=True, slots=True)
class TagRead:
    """One RFID tag observation: a reader saw `epc` (hex) on `antenna`."""

    device: str
    antenna: int
    epc: str
    rssi: float | None
    ts: float
    mono: float
    seen_count: int = 1


@dataclass(frozen=True, slots=True)
class WeightSample:
    """One weight from a scale, in kg; `stable` is the scale's own stability flag."""

    device: str
    weight_kg: float
    stable: bool
    ts: float
    mono: float
    tare_kg: float = 0.0
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class Sale:
    """One sale line captured at a till: never aggregated away.

    `price` is the unit price and `amount` the line total, both exact decimals;
    `sku` is None when the till showed only a name that the catalog could not resolve
    (then `text` holds what it showed); `total_mismatch` marks the lines of a receipt
    whose items did not add up to its printed total.
    """

    device: str
    txn: str
    sku: str | None
    qty: Decimal
    price: Decimal
    amount: Decimal
    currency: str
    ts: float
    mono: float
    text: str | None = None
    total_mismatch: bool = False


Event = Reading | Readings | TagRead | WeightSample | Sale
"""Everything a driver may emit."""
