"""Recorded sales per SKU per clock hour, for the stockout features (numpy, bounded).

The feature builder needs 14 days of hourly sales ending at the scoring moment
(`HISTORY_H`, stockout.md "The two baselines"). We keep `HISTORY_H + 1` clock-hour columns
(a ring: the newest is the hour in progress) and each SKU's latest sale time. Memory is
`max_skus x 337 x 4` bytes at most (13.5 MB for 10,000 SKUs).

Persistence: one small record per hour slot (`export_hour`/`restore_hour`), so the daemon's
state saver rewrites only the hours that changed, never the whole history.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from gateway.stockout.features import HISTORY_H, HOUR_S

if TYPE_CHECKING:
    import numpy.typing as npt

WIDTH = HISTORY_H + 1  # the 336 hours the builder reads, plus the hour in progress
_INITIAL_ROWS = 64


class SalesHistory:
    """Hourly sales of up to `max_skus` SKUs over the last `WIDTH` clock hours."""

    def __init__(self, max_skus: int) -> None:
        self.max_skus = max_skus
        self.index: dict[str, int] = {}
        self.skus: list[str] = []
        self._counts = np.zeros((_INITIAL_ROWS, WIDTH), dtype=np.float32)
        self._last_sale = np.full(_INITIAL_ROWS, np.nan, dtype=np.float64)
        self.head: int | None = None  # epoch hour of the newest column
        self.first_hour: int | None = None  # the oldest hour we have seen (history depth)
        self.dirty_hours: set[int] = set()
        self.refused_skus = 0  # SKUs beyond max_skus
        self.late_sales = 0  # sales older than the history

    def __len__(self) -> int:
        return len(self.skus)

    def row(self, sku: str) -> int | None:
        """The SKU's row, added when new (None once `max_skus` are tracked)."""
        i = self.index.get(sku)
        if i is not None:
            return i
        if len(self.skus) >= self.max_skus:
            self.refused_skus += 1
            return None
        i = len(self.skus)
        if i == self._counts.shape[0]:
            rows = min(2 * i, self.max_skus)
            self._counts = np.concatenate([self._counts, np.zeros((rows - i, WIDTH), np.float32)])
            self._last_sale = np.concatenate([self._last_sale, np.full(rows - i, np.nan)])
        self.index[sku] = i
        self.skus.append(sku)
        return i

    def advance(self, now: float) -> None:
        """Move the newest column to the hour of `now`, zeroing the hours that start anew."""
        hour = math.floor(now / HOUR_S)
        if self.head is None:
            self.head = hour
            self.first_hour = hour
            return
        if hour <= self.head:
            return
        steps = min(hour - self.head, WIDTH)
        cols = [(self.head + k) % WIDTH for k in range(1, steps + 1)]
        self._counts[:, cols] = 0.0
        self.head = hour

    def add(self, sku: str, qty: float, ts: float) -> bool:
        """Count a sale of `qty` at wall time `ts`; False when it cannot be kept."""
        self.advance(ts)
        assert self.head is not None
        hour = math.floor(ts / HOUR_S)
        if hour <= self.head - WIDTH:
            self.late_sales += 1
            return False
        i = self.row(sku)
        if i is None:
            return False
        self._counts[i, hour % WIDTH] += qty
        last = self._last_sale[i]
        if not last >= ts:  # NaN (never sold) compares False
            self._last_sale[i] = ts
        self.dirty_hours.add(hour)
        if self.first_hour is None or hour < self.first_hour:
            self.first_hour = hour
        return True

    def window(self, now: float) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
        """Copies of (sales [n, WIDTH], oldest hour first; last sale per SKU) at `now`."""
        self.advance(now)
        assert self.head is not None
        n = len(self.skus)
        oldest = (self.head + 1) % WIDTH  # the ring's oldest column
        counts = self._counts[:n]
        sales = np.concatenate([counts[:, oldest:], counts[:, :oldest]], axis=1)
        return sales, self._last_sale[:n].copy()

    def export_hour(self, hour: int) -> dict[str, Any]:
        """One hour's sales as a small JSON-able record {hour, sales: {sku: [qty, last ts]}}."""
        sales: dict[str, list[float]] = {}
        if self.head is not None and self.head - WIDTH < hour <= self.head:
            col = self._counts[: len(self.skus), hour % WIDTH]
            for i in np.flatnonzero(col).tolist():
                last = float(self._last_sale[i])
                # The SKU's latest sale, when it fell in this hour; else the hour's end.
                in_hour = math.floor(last / HOUR_S) == hour if not math.isnan(last) else False
                sales[self.skus[i]] = [float(col[i]), last if in_hour else (hour + 1) * HOUR_S]
        return {"hour": hour, "sales": sales}

    def restore_hour(self, record: dict[str, Any], now: float) -> None:
        """Add back one exported hour (skipped when outside the history at `now`)."""
        hour, sales = record.get("hour"), record.get("sales")
        if not isinstance(hour, int) or not isinstance(sales, dict):
            return
        self.advance(now)
        assert self.head is not None
        if not self.head - WIDTH < hour <= self.head:
            return
        for sku, (qty, last) in sales.items():
            i = self.row(sku)
            if i is None:
                continue
            self._counts[i, hour % WIDTH] += qty
            if not self._last_sale[i] >= last:
                self._last_sale[i] = last
        if self.first_hour is None or hour < self.first_hour:
            self.first_hour = hour
