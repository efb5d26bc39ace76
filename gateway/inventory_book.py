"""The inventory's ledger: per SKU, the last observed on-shelf quantity and the sales since.

When no sensor sees a shelf (or its sensor went quiet), its quantity is the last known one
minus what sold since (issue 5, "Inventory state"). A shelf never observed starts from its
configured capacity (source `book`, low confidence: "assume it was filled"). An estimate that
rests on sales loses confidence with age: every `HALF_LIFE` without an observation halves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.estimates import EstimateSource, ShelfEstimate

HALF_LIFE = 4 * 3600.0
"""Seconds after which a sales-based estimate is trusted half as much (shrinkage, misplacement)."""
BOOK_CONFIDENCE = 0.3
"""How far "the shelf was full at start" is trusted."""
REFILL_MIN_UNITS = 2
REFILL_SHARE = 0.2
"""A rise of at least this share of the capacity (and `REFILL_MIN_UNITS`) is a refill, not noise."""


@dataclass(slots=True)
class Book:
    """One SKU's last observation and the units sold since it."""

    qty: float
    ts: float
    source: EstimateSource
    confidence: float
    sold: float = 0.0
    last_refill: float | None = None

    def as_list(self) -> list[Any]:
        """A JSON-friendly row for the persisted state."""
        return [self.qty, self.ts, self.source.value, self.confidence, self.sold, self.last_refill]

    @classmethod
    def from_list(cls, row: list[Any]) -> Book | None:
        """Rebuild from `as_list`; None for a row this version cannot read."""
        try:
            qty, ts, source, confidence, sold, refill = row
            return cls(
                float(qty),
                float(ts),
                EstimateSource(source),
                float(confidence),
                float(sold),
                None if refill is None else float(refill),
            )
        except (TypeError, ValueError):
            return None


class Ledger:
    """Books for every SKU: observations in, sales in, estimates out."""

    __slots__ = ("books",)

    def __init__(self) -> None:
        self.books: dict[str, Book] = {}

    def observe(
        self,
        sku: str,
        qty: float,
        ts: float,
        source: EstimateSource,
        confidence: float,
        capacity: int | None = None,
    ) -> None:
        """A sensor (or an operator) saw `qty` units at `ts`: the sales count restarts."""
        book = self.books.get(sku)
        refill = None
        if book is not None:
            if ts < book.ts:
                return  # an older observation than the one we hold
            step = max(REFILL_MIN_UNITS, REFILL_SHARE * capacity if capacity else 0)
            refill = ts if qty >= book.qty - book.sold + step else book.last_refill
        self.books[sku] = Book(qty, ts, source, confidence, last_refill=refill)

    def assume_full(self, sku: str, capacity: int, ts: float) -> None:
        """Start a never-observed shelf at its capacity (only if it has no book yet)."""
        if sku not in self.books:
            self.books[sku] = Book(float(capacity), ts, EstimateSource.BOOK, BOOK_CONFIDENCE)

    def sell(self, sku: str, qty: float, ts: float) -> None:
        """Units sold (negative: returned) at `ts`; sales before the observation are in it."""
        book = self.books.get(sku)
        if book is not None and ts >= book.ts:
            book.sold += qty

    def estimate(self, sku: str, now: float, capacity: int | None) -> ShelfEstimate | None:
        """Last known minus sales since, or None when the SKU was never known."""
        book = self.books.get(sku)
        if book is None:
            return None
        if not book.sold:
            return ShelfEstimate(
                sku, book.qty, book.source, book.ts, book.confidence, book.last_refill, capacity
            )
        age = max(0.0, now - book.ts)
        confidence = book.confidence * 0.5 ** (age / HALF_LIFE)
        return ShelfEstimate(
            sku,
            max(0.0, book.qty - book.sold),
            EstimateSource.SALES,
            book.ts,
            round(confidence, 4),
            book.last_refill,
            capacity,
        )

    def dump(self) -> dict[str, list[Any]]:
        """Every book as JSON-friendly rows."""
        return {sku: book.as_list() for sku, book in self.books.items()}

    def load(self, rows: dict[str, Any]) -> int:
        """Restore rows written by `dump`; returns how many could not be read."""
        bad = 0
        for sku, row in rows.items():
            book = Book.from_list(row) if isinstance(row, list) else None
            if book is None:
                bad += 1
            else:
                self.books[sku] = book
        return bad
