"""Labels, empty events and whole-day splits of stores (stockout.md, "Label and evaluation")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tools.stockout.simulate import TICKS_PER_HOUR, WARMUP_DAYS, StoreRun

TICKS_PER_DAY = 24 * TICKS_PER_HOUR


@dataclass(frozen=True, slots=True)
class DaySplit:
    """Whole-day ranges [start, end) for train, validation and test; a day's gap between each."""

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]

    @classmethod
    def for_days(cls, days: int) -> DaySplit:
        """About 60 % train, 10 % validation, 25 % test, one-day gaps (>= H) between them."""
        val_start = round(days * 0.6) + 1
        test_start = val_start + max(2, round(days * 0.1)) + 1
        return cls((0, val_start - 1), (val_start, test_start - 1), (test_start, days))


@dataclass(frozen=True, slots=True)
class Rows:
    """Feature rows with their labels and identities (store index, SKU, tick)."""

    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.bool_]
    forecast: npt.NDArray[np.bool_]  # shelf > 0 at t: the headline subset
    store: npt.NDArray[np.int32]
    sku: npt.NDArray[np.int32]
    tick: npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class Events:
    """Moments a shelf went from > 0 to 0 (store index, SKU, tick of the empty state)."""

    store: npt.NDArray[np.int32]
    sku: npt.NDArray[np.int32]
    tick: npt.NDArray[np.int32]


def labels(run: StoreRun, horizon_h: float) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(label, forecast-row mask): the shelf holds 0 at some moment in [t, t+H]; shelf > 0 at t."""
    empty = (run.shelf == 0).astype(np.int32)
    cum = np.concatenate([np.zeros((empty.shape[0], 1), np.int32), np.cumsum(empty, axis=1)], 1)
    end = np.minimum(run.tick + round(horizon_h * TICKS_PER_HOUR) + 1, empty.shape[1])
    label = (cum[run.sku, end] - cum[run.sku, run.tick]) > 0
    return label, run.shelf[run.sku, run.tick] > 0


def select(
    runs: list[StoreRun], store_ids: list[int], days: tuple[int, int], horizon_h: float
) -> Rows:
    """Rows of the given stores on days [start, end), labelled with horizon H."""
    parts: list[Rows] = []
    for idx in store_ids:
        run = runs[idx]
        keep = (run.day >= days[0]) & (run.day < days[1])
        label, forecast = labels(run, horizon_h)
        store = np.full(int(keep.sum()), idx, np.int32)
        parts.append(Rows(run.features[keep], label[keep], forecast[keep], store,
                          run.sku[keep], run.tick[keep]))  # fmt: skip
    return Rows(*(np.concatenate([getattr(p, f) for p in parts]) for f in Rows.__slots__))


def events(runs: list[StoreRun], store_ids: list[int], days: tuple[int, int]) -> Events:
    """Empty events on days [start, end) of the given stores."""
    stores, skus, ticks = [], [], []
    for idx in store_ids:
        shelf = runs[idx].shelf
        sku, tick = np.nonzero((shelf[:, :-1] > 0) & (shelf[:, 1:] == 0))
        tick = tick + 1
        day = tick // TICKS_PER_DAY - WARMUP_DAYS
        keep = (day >= days[0]) & (day < days[1])
        stores.append(np.full(int(keep.sum()), idx, np.int32))
        skus.append(sku[keep].astype(np.int32))
        ticks.append(tick[keep].astype(np.int32))
    return Events(np.concatenate(stores), np.concatenate(skus), np.concatenate(ticks))
