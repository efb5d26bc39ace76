"""Store simulator: true shelf stock per 15-minute tick, and the gateway's view of it per hour.

The truth (shelf units) gives the labels; the gateway's view (recorded sales, book, logged
refills, noisy RFID/scale readings) goes through `gateway.stockout.build_features` at
every open hour, exactly as the daemon will call it. Demand lost on an empty shelf is not
recorded (censored sales, stockout.md pitfall 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway.stockout import HISTORY_H, N_FEATURES, EstimateSource, StockoutInputs, build_features
from tools.stockout.stores import DOW_MULT, StoreConfig, hour_weights

TICKS_PER_HOUR = 4
TICK_S = 3600.0 / TICKS_PER_HOUR
EPOCH0 = 1_704_067_200.0  # 2024-01-01 00:00 UTC, a Monday
WARMUP_DAYS = 14  # history the features need before the first row (HISTORY_H)
RFID_STRAY_PER_READ = 0.03
SCALE_NOISE_G = 2.0
SCALE_DRIFT_G_PER_DAY = 3.0

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class StoreRun:
    """One simulated store: feature rows at open hours and the true shelf per tick."""

    config: StoreConfig
    features: npt.NDArray[np.float32]  # [rows, N_FEATURES]
    sku: npt.NDArray[np.int32]  # [rows]
    tick: npt.NDArray[np.int32]  # [rows] tick index of the row's time t
    shelf: npt.NDArray[np.int16]  # [n_skus, ticks+1] true units at each tick boundary
    day: npt.NDArray[np.int16]  # [rows]


def _is_open(config: StoreConfig, dow: int, hour: int) -> bool:
    if dow == 6 and not config.sunday_open:
        return False
    return config.open_hour <= hour < config.close_hour


def _demand_plan(config: StoreConfig, days: int, rng: np.random.Generator) -> tuple[F64, F64, F64]:
    """Per-SKU base rate, daily promo lift (planned, flagged) and unplanned lift [n, days]."""
    n = config.n_skus
    rate = np.clip(rng.lognormal(np.log(config.rate_median), config.rate_sigma, n), 0.1, 60.0)
    promo = np.ones((n, days))
    for s in range(n):
        day = 0
        while day < days:
            if rng.random() < config.promo_weekly_p / 7.0:
                length = int(rng.integers(3, 8))
                promo[s, day : day + length] = rng.uniform(1.5, 3.0)
                day += length + 7  # no back-to-back promotions of one SKU
            else:
                day += 1
    unplanned = np.where(rng.random((n, days)) < config.unplanned_daily_p,
                         rng.uniform(1.5, 2.5, (n, days)), 1.0)  # fmt: skip
    return rate, promo, unplanned


def simulate_store(config: StoreConfig, days: int, horizon_h: float, seed: int) -> StoreRun:
    """Simulate `days` days after a WARMUP_DAYS warm-up; rows start after the warm-up."""
    rng = np.random.default_rng(seed)
    base = EPOCH0 - config.utc_offset_s  # local Monday 00:00 of week 0, as UTC epoch
    n, total_days = config.n_skus, days + WARMUP_DAYS + 1  # +1: labels look H past the end
    ticks = total_days * 24 * TICKS_PER_HOUR
    rate, promo, unplanned = _demand_plan(config, total_days, rng)
    hw = np.array(hour_weights(config.open_hour, config.close_hour))
    capacity = np.clip(np.round(rate * rng.lognormal(np.log(config.cover_days), 0.4, n)), 3, 80)
    forecast = rate * rng.lognormal(0.0, config.forecast_error, n)
    kind = rng.random(n)
    rfid = kind < config.rfid_share
    scale = (~rfid) & (kind < config.rfid_share + config.scale_share)
    read_p = rng.uniform(0.85, 0.98, n)
    unit_g = rng.uniform(50.0, 1000.0, n)
    unit_spread = rng.normal(0.0, 0.02, n)
    drift_g = np.zeros(n)

    days_sorted = sorted(config.delivery_days)
    gap = max(
        (b - a) % 7 or 7
        for a, b in zip(days_sorted, days_sorted[1:] + days_sorted[:1], strict=True)
    )
    order_days = 2.0 * gap * config.safety_factor
    shelf = capacity.astype(np.int64)
    back = np.round(forecast * 3.0).astype(np.int64)
    book = shelf + back
    pending = np.zeros(n, dtype=np.int64)
    delayed = np.zeros(n, dtype=np.int64)
    cum_rec = np.zeros(n)
    rec_at_refill = np.zeros(n)
    last_refill = np.full(n, np.nan)
    last_book_event = np.full(n, base)
    last_sale = np.full(n, np.nan)
    reading = shelf.astype(np.float64)
    reading_t = np.full(n, base)
    rec_at_reading = np.zeros(n)
    hourly = np.zeros((n, total_days * 24), dtype=np.float32)
    truth = np.zeros((n, ticks + 1), dtype=np.int16)
    truth[:, 0] = shelf
    profile = np.full(168, 1e-4, dtype=np.float32)
    rows_x: list[npt.NDArray[np.float32]] = []
    rows_tick: list[int] = []
    rfid_out = scale_out = False

    for j in range(ticks):
        now = base + j * TICK_S
        day, hour, quarter = j // 96, (j // TICKS_PER_HOUR) % 24, j % TICKS_PER_HOUR
        dow = day % 7
        if quarter == 0 and hour == 0:
            rfid_out = rng.random() < config.rfid_outage_daily_p
            scale_out = rng.random() < config.scale_outage_daily_p
            drift_g += rng.normal(0.0, SCALE_DRIFT_G_PER_DAY, n)
        if quarter == 0 and hour == 5:  # cycle counts fix the book (overnight)
            audited = rng.random(n) < config.audit_daily_p
            book[audited] = shelf[audited] + back[audited]
            last_book_event[audited] = now
        if quarter == 0 and hour == 6 and dow in config.delivery_days:
            missed = rng.random() < config.delivery_miss_p  # comes with the next delivery
            late = not missed and rng.random() < config.delivery_delay_p
            if late:
                delayed, pending = pending, np.zeros(n, dtype=np.int64)
            elif not missed:
                _receive(pending, (back, book), now, last_book_event, rng)
                pending = np.zeros(n, dtype=np.int64)
            # Order up to the needs until the delivery after next, from the (wrong) book.
            need = forecast * promo[:, min(day + 1, total_days - 1)] * order_days
            order = np.maximum(np.round(need + capacity - book - pending - delayed), 0)
            pending = pending + order.astype(np.int64)
        if quarter == 0 and hour == 13 and delayed.any():
            _receive(delayed, (back, book), now, last_book_event, rng)
            delayed = np.zeros(n, dtype=np.int64)
        if quarter == 0 and hour in config.walk_hours:
            walk = (rng.random(n) > config.walk_skip_p) & (shelf < config.refill_trigger * capacity)
            moved = np.where(walk, np.minimum(capacity.astype(np.int64) - shelf, back), 0)
            shelf += moved
            back -= moved
            logged = (moved > 0) & (rng.random(n) < config.refill_log_p)
            last_refill[logged] = now
            rec_at_refill[logged] = cum_rec[logged]
            drift_g[moved > 0] = 0.0  # re-tared when restocked
        if _is_open(config, dow, hour):
            lam = rate * DOW_MULT[dow] * hw[hour] * promo[:, day] * unplanned[:, day]
            demand = rng.poisson(lam / TICKS_PER_HOUR)
            sold = np.minimum(demand, shelf)
            shelf -= sold
            theft = np.minimum(rng.poisson(config.shrink_share * lam / TICKS_PER_HOUR), shelf)
            shelf -= theft
            wrong = rng.binomial(sold, config.misscan_p)
            recorded = (sold - wrong).astype(np.float64)
            if wrong.any():
                np.add.at(recorded, rng.integers(0, n, int(wrong.sum())), 1.0)
            book -= recorded.astype(np.int64)
            cum_rec += recorded
            hourly[:, j // TICKS_PER_HOUR] += recorded
            last_sale[recorded > 0] = now + TICK_S
        truth[:, j + 1] = shelf
        t_end = now + TICK_S
        if not rfid_out:
            count = rng.binomial(shelf, read_p) + rng.poisson(RFID_STRAY_PER_READ, n)
            reading[rfid] = count[rfid]
            reading_t[rfid] = t_end
            rec_at_reading[rfid] = cum_rec[rfid]
        if not scale_out:
            grams = shelf * unit_g * (1 + unit_spread) + rng.normal(0, SCALE_NOISE_G, n) + drift_g
            reading[scale] = np.maximum(np.round(grams / unit_g), 0)[scale]
            reading_t[scale] = t_end
            rec_at_reading[scale] = cum_rec[scale]

        k = j + 1  # state at t_end is known now; a row at t_end sees everything before it
        if k % (24 * TICKS_PER_HOUR) == 0 and k // 96 == WARMUP_DAYS:
            profile = _week_profile(hourly[:, : WARMUP_DAYS * 24])
        t_hour, t_day = (k // TICKS_PER_HOUR) % 24, k // 96
        if (k % TICKS_PER_HOUR or t_day < WARMUP_DAYS or t_day >= total_days - 1
                or not _is_open(config, t_day % 7, t_hour)):  # fmt: skip
            continue
        h_idx = k // TICKS_PER_HOUR
        sensor = rfid | scale
        refill_newer = ~np.isnan(last_refill) & (np.nan_to_num(last_refill) > last_book_event)
        estimate = np.where(
            sensor, reading - (cum_rec - rec_at_reading),
            np.where(refill_newer, capacity - (cum_rec - rec_at_refill),
                     np.minimum(book, capacity)),
        )  # fmt: skip
        by_log = np.where(refill_newer, EstimateSource.REFILL, EstimateSource.BOOK)
        source = np.where(rfid, EstimateSource.RFID, np.where(scale, EstimateSource.SCALE, by_log))
        since = np.where(sensor, reading_t, np.where(refill_newer, last_refill, last_book_event))
        inputs = StockoutInputs(
            now=t_end, utc_offset_s=config.utc_offset_s, horizon_h=horizon_h,
            week_profile=profile, on_shelf=np.maximum(estimate, 0).astype(np.float32),
            source=source.astype(np.int8), estimate_age_s=t_end - since,
            capacity=capacity.astype(np.float32), promo=promo[:, t_day] > 1.0,
            last_sale_s=last_sale,
            last_refill_s=last_refill, sales_hourly=hourly[:, h_idx - HISTORY_H : h_idx],
        )  # fmt: skip
        rows_x.append(build_features(inputs))
        rows_tick.append(k)

    n_rows = len(rows_tick)
    tick_arr = np.repeat(np.array(rows_tick, dtype=np.int32), n)
    return StoreRun(
        config=config,
        features=np.concatenate(rows_x) if rows_x else np.empty((0, N_FEATURES), np.float32),
        sku=np.tile(np.arange(n, dtype=np.int32), n_rows),
        tick=tick_arr,
        shelf=truth,
        day=(tick_arr // 96 - WARMUP_DAYS).astype(np.int16),
    )


def _receive(
    arriving: I64,
    stock: tuple[I64, I64],
    now: float,
    last_book_event: F64,
    rng: np.random.Generator,
) -> None:
    """Book the invoiced quantity; put what really came (miscounts: 5 %, +-3) in the back room."""
    back, book = stock
    error = np.where(
        rng.random(arriving.shape[0]) < 0.05, rng.integers(-3, 4, arriving.shape[0]), 0
    )
    back += np.maximum(arriving + error, 0) * (arriving > 0)
    book += arriving
    last_book_event[arriving > 0] = now


def _week_profile(hourly: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The store's share of sales per hour of week from its recorded history (Monday 0h first)."""
    per_hour = hourly.sum(axis=0)
    weeks = per_hour.reshape(-1, 168).sum(axis=0)
    shares: npt.NDArray[np.float32] = ((weeks + 1e-3) / (weeks + 1e-3).sum()).astype(np.float32)
    return shares
