"""Exponential backoff with a jittered floor, shared by the supervisor and the uplink.

Delay n is `min(cap, base·2ⁿ)·uniform(0.5, 1)`: growing, capped, and spread so that 30
meters on one RS-485 line (or 100 gateways after a broker restart) do not retry at once,
while never dropping below half the nominal delay (unlike "full jitter", which may retry
immediately).
"""

from __future__ import annotations

import random


class Backoff:
    """Delays for consecutive failures; `reset()` after a stable period."""

    __slots__ = ("_rng", "attempts", "base", "cap")

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.attempts = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The delay before the next attempt; counts the attempt."""
        nominal = min(self.cap, self.base * (2 ** min(self.attempts, 62)))
        self.attempts += 1
        return float(nominal * self._rng.uniform(0.5, 1.0))

    def reset(self) -> None:
        """Back to the first delay."""
        self.attempts = 0
