"""The on-shelf estimate per SKU: what inventory produces and inference consumes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EstimateSource(StrEnum):
    """Where an on-shelf quantity comes from, most trusted first."""

    RFID = "rfid"  # tags present in the shelf's zone
    SCALE = "scale"  # weight / unit weight on a shelf scale
    SALES = "sales"  # last known quantity minus sales since
    BOOK = "book"  # only the configured capacity / an operator's count


@dataclass(frozen=True, slots=True)
class ShelfEstimate:
    """One SKU's on-shelf quantity, its source, and how old and how sure it is."""

    sku: str
    qty: float
    source: EstimateSource
    updated: float  # wall time (epoch s) of the observation the estimate rests on
    confidence: float = 1.0  # 0..1
    last_refill: float | None = None  # wall time the shelf was last seen refilled
    capacity: int | None = None
