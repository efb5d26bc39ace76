"""Stockout alerts with hysteresis: raise above the threshold, clear below a lower level.

An alert for a SKU is raised when its risk reaches `threshold`; it clears only when the
risk has fallen below `threshold - clear_margin` AND it has been raised for `min_hold`
(stockout.md pitfall 6: alert fatigue). A risk wandering around the threshold therefore
produces one alert, not one per round. A `forecast` alert whose shelf then looks empty is
re-raised once as `empty_now` (the situation got worse; staff should know); the reverse is
not announced. IO-free: the service turns transitions into messages and persists `state()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

FORECAST = "forecast"
EMPTY_NOW = "empty_now"
RAISED = "raised"
CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class Transition:
    """One alert to publish: `raised` (or re-raised as empty_now) or `cleared`."""

    sku: str
    state: str  # RAISED or CLEARED
    reason: str  # FORECAST or EMPTY_NOW (for a clear: the reason it was raised for)
    risk: float
    row: int  # index into the round's arrays (features, risk)
    since: float  # when the alert was first raised


@dataclass(slots=True)
class _Open:
    since: float
    reason: str


class AlertBook:
    """Which SKUs have an open stockout alert; updated once per scoring round."""

    def __init__(self, threshold: float, clear_margin: float, min_hold: float) -> None:
        self.threshold = threshold
        self.clear_margin = clear_margin
        self.min_hold = min_hold
        self._open: dict[str, _Open] = {}

    @property
    def clear_below(self) -> float:
        """The risk under which an alert may clear."""
        return self.threshold - self.clear_margin

    def __len__(self) -> int:
        return len(self._open)

    def is_open(self, sku: str) -> bool:
        """Whether `sku` has a raised alert."""
        return sku in self._open

    def update(
        self,
        skus: Sequence[str],
        risk: npt.NDArray[np.float32],
        empty_now: npt.NDArray[np.bool_],
        now: float,
    ) -> list[Transition]:
        """Apply one round's risks; returns the alerts to publish.

        SKUs absent from the round (no longer scored) keep their alert until scored again.
        """
        out: list[Transition] = []
        rows = {sku: i for i, sku in enumerate(skus)}
        for sku in list(self._open):
            i = rows.get(sku)
            if i is None:
                continue
            alert, r = self._open[sku], float(risk[i])
            held = now - alert.since >= self.min_hold
            if r < self.clear_below and held:
                del self._open[sku]
                out.append(Transition(sku, CLEARED, alert.reason, r, i, alert.since))
            elif alert.reason == FORECAST and empty_now[i] and r >= self.threshold:
                alert.reason = EMPTY_NOW
                out.append(Transition(sku, RAISED, EMPTY_NOW, r, i, alert.since))
        for i in np.flatnonzero(risk >= self.threshold).tolist():
            sku = skus[i]
            if sku in self._open:
                continue
            reason = EMPTY_NOW if empty_now[i] else FORECAST
            self._open[sku] = _Open(now, reason)
            out.append(Transition(sku, RAISED, reason, float(risk[i]), i, now))
        return out

    def state(self) -> dict[str, list[Any]]:
        """Open alerts as JSON-able data: {sku: [since, reason]}."""
        return {sku: [a.since, a.reason] for sku, a in self._open.items()}

    def restore(self, data: Any) -> None:
        """Re-open the alerts saved by `state()` (a restart must not re-raise or forget)."""
        if not isinstance(data, dict):
            return
        for sku, value in data.items():
            if isinstance(value, list) and len(value) == 2 and value[1] in (FORECAST, EMPTY_NOW):
                self._open[str(sku)] = _Open(float(value[0]), str(value[1]))
