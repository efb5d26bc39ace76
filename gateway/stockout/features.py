"""Stockout features: one vectorised build of the model's input matrix from gateway state.

The daemon imports this at run time, so it uses numpy only. Training (`tools/stockout`)
calls the same `build_features` on simulated state, so the shipped model sees exactly the
columns it was trained on. Every feature at time `now` uses only what happened before
`now` (stockout.md, pitfall 1). Names and order are `FEATURE_NAMES`, also in the card.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
TimeArray = npt.NDArray[np.float64]  # epoch seconds need float64 (float32 steps are 128 s)

HOUR_S = 3600.0
WEEK_H = 168
# Sales history the builder needs: 14 days (the baselines' trailing rate r, stockout.md
# "The two baselines"), which also covers "the same hours one week ago".
HISTORY_H = 336
# 1970-01-01 was a Thursday: hours to add to epoch hours so that 0 = Monday 00:00.
_EPOCH_TO_MONDAY_H = 72.0
_MIN_RATE_PER_DAY = 0.01  # r's floor in the days-of-cover baseline (stockout.md)
_MIN_EXPECTED = 0.05  # floor on expected sales so the cover ratio stays finite
_MAX_AGE_H = float(HISTORY_H)  # ages beyond the history carry no extra information
_MAX_LAMBDA = 50.0
# An hour of day is a refill walk hour if at least this share of the logged refills fell in it.
_WALK_SHARE = 0.05

FEATURE_NAMES: tuple[str, ...] = (
    "on_shelf",
    "fill_ratio",
    "capacity",
    "estimate_source",
    "estimate_age_h",
    "sales_1h",
    "sales_3h",
    "sales_24h",
    "sales_next_h_last_week",
    "rate_per_day",
    "expected_next_h",
    "cover_ratio",
    "days_of_cover",
    "poisson_lambda",
    "hours_since_sale",
    "hours_since_refill",
    "promo",
    "hour_of_day",
    "day_of_week",
    "walk_share_next_h",
    "hours_to_walk",
)
N_FEATURES = len(FEATURE_NAMES)


class EstimateSource(IntEnum):
    """Where the on-shelf estimate came from; the value is the feature's code."""

    BOOK = 0  # min(book stock, capacity): wrong for most SKUs (DeHoratius & Raman 2008)
    REFILL = 1  # capacity after the latest logged refill, minus sales since
    SCALE = 2  # shelf load cell reading
    RFID = 3  # shelf RFID read count


@dataclass(frozen=True, slots=True)
class StockoutInputs:
    """Per-SKU gateway state at scoring time `now`, as parallel arrays of length n."""

    now: float  # epoch seconds
    utc_offset_s: float  # the store's local time = now + utc_offset_s
    horizon_h: float  # H: the label's look-ahead (model card `horizon_h`)
    week_profile: FloatArray  # [168] store share of weekly sales per local hour, Monday 0h first
    on_shelf: FloatArray  # [n] estimate q̂ (units), sales since the estimate already subtracted
    source: npt.NDArray[np.int8]  # [n] EstimateSource codes
    estimate_age_s: TimeArray  # [n] seconds since the estimate's reading or refill
    capacity: FloatArray  # [n] shelf capacity (units)
    promo: npt.NDArray[np.bool_]  # [n] a planned promotion is running
    last_sale_s: TimeArray  # [n] epoch seconds of the latest recorded sale, NaN if none
    last_refill_s: TimeArray  # [n] epoch seconds of the latest logged refill, NaN if none
    sales_hourly: FloatArray  # [n, >=336] recorded sales per hour; last column ends at now


def week_position_h(epoch_s: npt.ArrayLike, utc_offset_s: float) -> npt.NDArray[np.float64]:
    """Local hours since the Monday 00:00 that starts epoch week 0 (continuous, unbounded)."""
    return (np.asarray(epoch_s, dtype=np.float64) + utc_offset_s) / HOUR_S + _EPOCH_TO_MONDAY_H


def cumulative_share(
    position_h: npt.NDArray[np.float64], profile: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Weeks' worth of expected sales from week 0 to each position, per the hour-of-week profile.

    The difference of two values times a weekly rate is the expected sales between two
    moments: Λ of the Poisson-gap baseline with w_h seasonality (stockout.md).
    """
    share = np.asarray(profile, dtype=np.float64)
    share = share / share.sum()
    starts = np.concatenate(([0.0], np.cumsum(share)[:-1]))
    weeks = np.floor(position_h / WEEK_H)
    within = position_h - weeks * WEEK_H
    hour = np.minimum(within.astype(np.int64), WEEK_H - 1)
    total: npt.NDArray[np.float64] = weeks + starts[hour] + (within - hour) * share[hour]
    return total


def refill_walks(
    last_refill_s: TimeArray, now: float, utc_offset_s: float, horizon_h: float
) -> tuple[float, float]:
    """(share of refills in the next H hours, hours to the next walk hour) for the store.

    Staff refill shelves on walks at fixed hours (stockout.md: 25 % of OOS come from shelf
    restocking); the latest logged refill of every SKU, read across the whole store, shows
    those hours without any schedule being configured. A walk inside H can save a shelf.
    """
    recent = last_refill_s[~np.isnan(last_refill_s)]
    recent = recent[recent > now - WEEK_H * HOUR_S]
    if recent.size == 0:
        return 0.0, 24.0
    hours = (np.floor(week_position_h(recent, utc_offset_s)) % 24).astype(np.int64)
    share = np.bincount(hours, minlength=24) / recent.size
    now_h = int(np.ceil(float(week_position_h(now, utc_offset_s)) - 1e-6)) % 24
    ahead = share[(now_h + np.arange(24)) % 24]
    walks = np.nonzero(ahead >= _WALK_SHARE)[0]
    next_walk = float(walks[0]) if walks.size else 24.0
    return float(ahead[: max(1, int(np.ceil(horizon_h)))].sum()), next_walk


def build_features(state: StockoutInputs) -> FloatArray:
    """The model's input matrix [n_skus, N_FEATURES] (float32) for every SKU at once."""
    hourly = np.asarray(state.sales_hourly, dtype=np.float32)
    if hourly.ndim != 2 or hourly.shape[1] < HISTORY_H:
        raise ValueError(f"sales_hourly must be [n, >={HISTORY_H}], got {hourly.shape}")
    if not 0 < state.horizon_h <= WEEK_H:
        raise ValueError(f"horizon_h must be in (0, {WEEK_H}], got {state.horizon_h}")
    hist = hourly[:, -HISTORY_H:]
    n = hist.shape[0]
    now_pos = float(week_position_h(state.now, state.utc_offset_s))
    profile = np.asarray(state.week_profile, dtype=np.float64)
    cum_now = float(cumulative_share(np.array([now_pos]), profile)[0])

    on_shelf = np.maximum(np.asarray(state.on_shelf, dtype=np.float32), 0.0)
    capacity = np.maximum(np.asarray(state.capacity, dtype=np.float32), 1.0)
    sales_14d = hist.sum(axis=1)
    rate_per_day = sales_14d / 14.0
    weekly_rate = sales_14d / 2.0
    # Expected sales in (now, now+H]: the weekly rate spread over the store's hour-of-week shape.
    cum_ahead = float(cumulative_share(np.array([now_pos + state.horizon_h]), profile)[0])
    expected = (weekly_rate * (cum_ahead - cum_now)).astype(np.float32)
    # The H hours that followed this moment one week ago (whole hours, from the history).
    start = HISTORY_H - WEEK_H
    ahead_h = max(1, round(state.horizon_h))
    last_week = hist[:, start : start + ahead_h].sum(axis=1)

    now_s = state.now
    last_sale = np.asarray(state.last_sale_s, dtype=np.float64)
    never_sold = np.isnan(last_sale)
    history_start = now_s - _MAX_AGE_H * HOUR_S
    gap_from = np.where(never_sold, history_start, np.maximum(last_sale, history_start))
    gap_cum = cumulative_share(week_position_h(gap_from, state.utc_offset_s), profile)
    poisson_lambda = np.minimum(weekly_rate * (cum_now - gap_cum), _MAX_LAMBDA)
    hours_since_sale = (now_s - gap_from) / HOUR_S
    last_refill = np.asarray(state.last_refill_s, dtype=np.float64)
    refill_age = np.where(np.isnan(last_refill), _MAX_AGE_H, (now_s - last_refill) / HOUR_S)

    local_h = (now_pos % WEEK_H) % 24.0
    dow = float((now_pos % WEEK_H) // 24.0)
    out = np.empty((n, N_FEATURES), dtype=np.float32)
    out[:, 0] = on_shelf
    out[:, 1] = on_shelf / capacity
    out[:, 2] = capacity
    out[:, 3] = state.source
    out[:, 4] = np.minimum(np.asarray(state.estimate_age_s, np.float64) / HOUR_S, _MAX_AGE_H)
    out[:, 5] = hist[:, -1]
    out[:, 6] = hist[:, -3:].sum(axis=1)
    out[:, 7] = hist[:, -24:].sum(axis=1)
    out[:, 8] = last_week
    out[:, 9] = rate_per_day
    out[:, 10] = expected
    out[:, 11] = on_shelf / np.maximum(expected, _MIN_EXPECTED)
    out[:, 12] = on_shelf / np.maximum(rate_per_day, _MIN_RATE_PER_DAY)
    out[:, 13] = poisson_lambda
    out[:, 14] = np.clip(hours_since_sale, 0.0, _MAX_AGE_H)
    out[:, 15] = np.clip(refill_age, 0.0, _MAX_AGE_H)
    out[:, 16] = np.asarray(state.promo, dtype=np.float32)
    out[:, 17] = local_h
    out[:, 18] = dow
    out[:, 19], out[:, 20] = refill_walks(last_refill, now_s, state.utc_offset_s, state.horizon_h)
    return out
