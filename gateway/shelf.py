"""Shelf-scale arithmetic shared by every scale driver: weight to unit count, and noise filtering.

A shelf scale weighs identical units; the count is the net weight divided by the catalog's
unit weight. How far that quotient sits from a whole number says how much to trust it: a
stray object, a mis-set tare or a wrong unit weight all push it between two counts.
"""

from __future__ import annotations

import math


def units_on_shelf(weight_kg: float, tare_kg: float, unit_weight_kg: float) -> tuple[int, float]:
    """Count units from a weight: (count, confidence 0-1, 1 when exactly on a whole multiple).

    Confidence falls linearly from 1 at a whole multiple of the unit weight to 0 half-way
    between two counts. A net weight below zero counts 0, with confidence falling the same
    way as it goes below (a tare set too high looks like that).
    """
    if not unit_weight_kg > 0 or not math.isfinite(unit_weight_kg):
        raise ValueError(f"unit weight must be a positive number of kg, got {unit_weight_kg!r}")
    net = weight_kg - tare_kg
    if not math.isfinite(net):
        return 0, 0.0
    ratio = net / unit_weight_kg
    count = max(0, round(ratio))
    deviation = abs(ratio - count)
    return count, max(0.0, 1.0 - 2.0 * deviation)


class StableFilter:
    """Hysteresis on counts: only stable readings, and a change must hold or be large.

    A new count replaces the current one when it was seen in `hold` consecutive stable
    readings, or at once when it differs by more than `band` units (a customer taking
    several items is real; a one-unit flicker on a settling scale is not). Unstable and
    low-confidence readings are ignored: they neither change the count nor break a run.
    """

    def __init__(self, hold: int = 3, band: int = 2, min_confidence: float = 0.0) -> None:
        """Set the run length, the jump size accepted at once, and the confidence floor."""
        if hold < 1:
            raise ValueError(f"hold must be at least 1 reading, got {hold}")
        if band < 0:
            raise ValueError(f"band must not be negative, got {band}")
        self._hold = hold
        self._band = band
        self._min_confidence = min_confidence
        self._count: int | None = None
        self._candidate: int | None = None
        self._run = 0

    @property
    def count(self) -> int | None:
        """The accepted count, None until the first stable reading."""
        return self._count

    def update(self, count: int, stable: bool, confidence: float = 1.0) -> int | None:
        """Offer one reading; return the accepted count afterwards."""
        if not stable or confidence < self._min_confidence:
            return self._count
        if self._count is None or abs(count - self._count) > self._band:
            self._accept(count)
        elif count == self._count:
            self._candidate, self._run = None, 0
        else:
            if count == self._candidate:
                self._run += 1
            else:
                self._candidate, self._run = count, 1
            if self._run >= self._hold:
                self._accept(count)
        return self._count

    def _accept(self, count: int) -> None:
        self._count = count
        self._candidate, self._run = None, 0
