"""One scoring round on the gateway: gateway state → feature matrix → risks (numpy only).

`score_round` runs in a worker thread on copies taken on the event loop (`RoundInput`), so
sales arriving meanwhile never race with it. It is the path `bench/inference.py` measures.

Two adaptations of the training rows (tools/stockout scores at whole hours):
- Between whole hours, the 336 hourly columns are slid to end at `now`, assuming sales
  spread evenly within an hour: column j = f x hour(k+1) + (1 - f) x hour(k), f being the
  elapsed share of the current hour. At a whole hour this is exactly the training layout.
- Without an inventory service, or for a SKU it does not report, the on-shelf estimate is
  the shelf capacity from the catalog with source `book` (stockout.md: min(book, capacity),
  the book being unknown here), aged since the history began; the model then leans on the
  sales-gap features. A SKU with neither an estimate nor a capacity is not scored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from gateway.estimates import EstimateSource as Source
from gateway.stockout.features import (
    HOUR_S,
    WEEK_H,
    EstimateSource,
    StockoutInputs,
    build_features,
    week_position_h,
)
from gateway.stockout.history import WIDTH

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import numpy.typing as npt

    from gateway.estimates import ShelfEstimate

# The inventory service's sources → the model's `estimate_source` codes. `sales` (last known
# quantity minus sales since) is what the simulator calls a logged refill minus sales.
SOURCE_CODES = {
    Source.RFID: EstimateSource.RFID,
    Source.SCALE: EstimateSource.SCALE,
    Source.SALES: EstimateSource.REFILL,
    Source.BOOK: EstimateSource.BOOK,
}
SOURCE_NAMES = {int(code): name.value for name, code in SOURCE_CODES.items()}
# The Poisson-gap baseline's rule (stockout.md): P(no sale | stocked) = e^-Λ < 0.05 ⇔ Λ > 3
# says the shelf is probably empty already; with an estimate of 0 that is "empty now".
EMPTY_LAMBDA = 3.0
_LAMBDA = 13  # FEATURE_NAMES index of poisson_lambda
_ON_SHELF = 0


@dataclass(frozen=True, slots=True)
class RoundInput:
    """Copies of the gateway state one round needs (taken on the event loop)."""

    now: float
    utc_offset_s: float
    horizon_h: float
    skus: list[str]
    sales: npt.NDArray[np.float32]  # [n, WIDTH] clock hours, oldest first; last = in progress
    last_sale: npt.NDArray[np.float64]  # [n] epoch s, NaN if never
    first_hour: int  # the oldest clock hour of the history we have seen
    estimates: Mapping[str, ShelfEstimate] | None  # None: no inventory service
    capacities: Mapping[str, int]  # catalog shelf capacities


@dataclass(frozen=True, slots=True)
class RoundResult:
    """The risks of the SKUs that could be scored, with their features."""

    skus: list[str]
    risk: npt.NDArray[np.float32]
    features: npt.NDArray[np.float32]
    empty_now: npt.NDArray[np.bool_]
    unscored: int
    features_ms: float
    score_ms: float


def slide(sales: npt.NDArray[np.float32], fraction: float) -> npt.NDArray[np.float32]:
    """HISTORY_H hourly columns ending at now, `fraction` of the current hour elapsed."""
    if fraction <= 0.0:  # at a whole hour the hour in progress has no elapsed time yet
        return sales[:, :-1]
    # Two passes and one temporary: this runs over 10,000 x 337 values every round.
    out: npt.NDArray[np.float32] = np.multiply(sales[:, :-1], np.float32(1.0 - fraction))
    np.add(out, np.multiply(sales[:, 1:], np.float32(fraction)), out=out)
    out[:, -1] += np.float32(1.0 - fraction) * sales[:, -1]
    return out


def week_profile(
    sales: npt.NDArray[np.float32], now: float, utc_offset_s: float, first_hour: int
) -> npt.NDArray[np.float32]:
    """The store's share of sales per local hour of week (Monday 0h first) from its history.

    With less than a week of history, the hour-of-day shape is repeated over the week.
    """
    head = int(now // HOUR_S)
    hours = np.arange(head - WIDTH + 1, head + 1)
    seen = hours >= first_hour
    totals = sales.sum(axis=0).astype(np.float64)[seen]
    position = np.floor(week_position_h(hours[seen] * HOUR_S, utc_offset_s)).astype(np.int64)
    if head - first_hour >= WEEK_H:
        weeks = np.bincount(position % WEEK_H, totals, WEEK_H)
    else:
        weeks = np.tile(np.bincount(position % 24, totals, 24), 7)
    # Same smoothing as the training profile (tools/stockout/simulate.py `_week_profile`).
    share: npt.NDArray[np.float32] = ((weeks + 1e-3) / (weeks + 1e-3).sum()).astype(np.float32)
    return share


def _column(items: list[Any], name: str) -> npt.NDArray[np.float64]:
    # One attribute of every estimate as float64; None (no refill seen) becomes NaN.
    return np.array(list(map(attrgetter(name), items)), dtype=np.float64)


def _shelf_state(inp: RoundInput) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """Which SKUs can be scored, and their [on_shelf, source, age_s, capacity, last_refill].

    Column-wise over the estimates (no per-SKU Python branches): this is the part of a
    round that reads 10,000 Python objects.
    """
    ests = list(map((inp.estimates or {}).get, inp.skus))
    caps = np.array([c or 0 for c in map(inp.capacities.get, inp.skus)], dtype=np.float64)
    has = np.fromiter((e is not None for e in ests), np.bool_, len(ests))
    keep = has | (caps > 0)
    present = [e for e in ests if e is not None]
    out = np.empty((len(ests), 5), dtype=np.float64)
    # Without an estimate: the catalog capacity as a book estimate, aged since the history began.
    out[:, 0] = caps
    out[:, 1] = float(EstimateSource.BOOK)
    out[:, 2] = max(0.0, inp.now - inp.first_hour * HOUR_S)
    out[:, 3] = caps
    out[:, 4] = np.nan
    if present:
        qty = _column(present, "qty")
        codes = [float(SOURCE_CODES.get(e.source, EstimateSource.BOOK)) for e in present]
        own = np.array([e.capacity or 0 for e in present], dtype=np.float64)
        capacity = np.where(own > 0, own, caps[has])
        out[has, 0] = qty
        out[has, 1] = codes
        out[has, 2] = inp.now - _column(present, "updated")
        out[has, 3] = np.where(capacity > 0, capacity, np.maximum(qty, 1.0))
        out[has, 4] = _column(present, "last_refill")
    return keep, out[keep]


def build_round(inp: RoundInput) -> tuple[list[str], npt.NDArray[np.float32], int]:
    """(scored SKUs, their feature matrix, how many SKUs could not be scored)."""
    keep, shelf = _shelf_state(inp)
    everything = bool(keep.all())
    skus = (
        inp.skus if everything else [s for s, k in zip(inp.skus, keep.tolist(), strict=True) if k]
    )
    hour_start = (inp.now // HOUR_S) * HOUR_S
    sales = inp.sales if everything else inp.sales[keep]
    hourly = slide(sales, (inp.now - hour_start) / HOUR_S)
    state = StockoutInputs(
        now=inp.now,
        utc_offset_s=inp.utc_offset_s,
        horizon_h=inp.horizon_h,
        week_profile=week_profile(inp.sales, inp.now, inp.utc_offset_s, inp.first_hour),
        on_shelf=shelf[:, 0].astype(np.float32),
        source=shelf[:, 1].astype(np.int8),
        estimate_age_s=np.maximum(shelf[:, 2], 0.0),
        capacity=shelf[:, 3].astype(np.float32),
        # No promotion feed reaches the gateway yet (pricing, issue 6): never "on promotion".
        promo=np.zeros(len(skus), dtype=np.bool_),
        last_sale_s=inp.last_sale if everything else inp.last_sale[keep],
        last_refill_s=shelf[:, 4],
        sales_hourly=hourly,
    )
    return skus, build_features(state), len(inp.skus) - len(skus)


def score_round(
    inp: RoundInput, score: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]
) -> RoundResult:
    """Build every SKU's features and score them in one batch (blocking: a worker thread)."""
    start = time.perf_counter()
    skus, x, unscored = build_round(inp)
    mid = time.perf_counter()
    risk = score(x) if len(skus) else np.zeros(0, dtype=np.float32)
    end = time.perf_counter()
    empty_now = (x[:, _ON_SHELF] < 0.5) | (x[:, _LAMBDA] > EMPTY_LAMBDA)
    return RoundResult(
        skus=skus,
        risk=np.clip(risk, 0.0, 1.0),
        features=x,
        empty_now=empty_now,
        unscored=unscored,
        features_ms=(mid - start) * 1e3,
        score_ms=(end - mid) * 1e3,
    )
