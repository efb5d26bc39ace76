"""Timing of one scoring round (features + score) on synthetic state; numpy + onnxruntime only."""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

import numpy as np

from gateway.stockout import HISTORY_H, StockoutInputs, build_features

if TYPE_CHECKING:
    import onnxruntime as ort

NOW = 1_717_405_200.0  # a Monday 09:00 UTC


def synthetic_inputs(n: int, seed: int = 0, horizon_h: float = 4.0) -> StockoutInputs:
    """Plausible gateway state for n SKUs (shapes and ranges as in the simulator)."""
    rng = np.random.default_rng(seed)
    rate = rng.lognormal(np.log(3.0), 1.0, n)
    capacity = np.clip(np.round(rate * 3.0), 3, 80).astype(np.float32)
    profile = rng.uniform(0.5, 1.5, 168).astype(np.float32)
    return StockoutInputs(
        now=NOW,
        utc_offset_s=3600.0,
        horizon_h=horizon_h,
        week_profile=profile / profile.sum(),
        on_shelf=np.floor(capacity * rng.random(n)).astype(np.float32),
        source=rng.integers(0, 4, n).astype(np.int8),
        estimate_age_s=rng.uniform(0, 86_400, n),
        capacity=capacity,
        promo=rng.random(n) < 0.05,
        last_sale_s=NOW - rng.exponential(3 * 3600.0, n),
        last_refill_s=NOW - rng.uniform(0, 2 * 86_400, n),
        sales_hourly=rng.poisson(rate[:, None] / 14.0, (n, HISTORY_H)).astype(np.float32),
    )


def round_ms(
    sess: ort.InferenceSession, state: StockoutInputs, runs: int
) -> tuple[float, float, float]:
    """Median ms of (features, score, both) over `runs` rounds, after one warm-up."""
    name = sess.get_inputs()[0].name
    output = sess.get_outputs()[-1].name
    sess.run([output], {name: build_features(state)})
    feat, both = [], []
    for _ in range(runs):
        start = time.perf_counter()
        x = build_features(state)
        mid = time.perf_counter()
        sess.run([output], {name: x})
        end = time.perf_counter()
        feat.append((mid - start) * 1e3)
        both.append((end - start) * 1e3)
    score = [b - f for b, f in zip(both, feat, strict=True)]
    return statistics.median(feat), statistics.median(score), statistics.median(both)
