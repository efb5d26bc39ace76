"""The stockout feature builder against hand-computed values, and the shipped model's card."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from gateway.stockout import (
    FEATURE_NAMES,
    HISTORY_H,
    N_FEATURES,
    EstimateSource,
    StockoutInputs,
    build_features,
    cumulative_share,
    week_position_h,
)
from gateway.stockout.features import refill_walks

MONDAY = 1_704_067_200.0  # 2024-01-01 00:00 UTC
HOUR = 3600.0
MODELS = Path(__file__).resolve().parents[2] / "models"


def _inputs(**changes: Any) -> StockoutInputs:
    """Two SKUs at Monday 10:00 local, flat weekly profile, H = 4 h."""
    hist = np.zeros((2, HISTORY_H), dtype=np.float32)
    hist[0, -1], hist[0, -2], hist[0, -24] = 2, 1, 3  # last 1 h, 3 h, 24 h
    hist[0, HISTORY_H - 168], hist[0, HISTORY_H - 165] = 5, 1  # the 4 h after "now" last week
    now = MONDAY + 10 * HOUR
    base: dict[str, Any] = {
        "now": now,
        "utc_offset_s": 0.0,
        "horizon_h": 4.0,
        "week_profile": np.full(168, 1 / 168, dtype=np.float32),
        "on_shelf": np.array([3, -1], dtype=np.float32),
        "source": np.array([EstimateSource.RFID, EstimateSource.BOOK], dtype=np.int8),
        "estimate_age_s": np.array([1800.0, 7 * 86_400.0]),
        "capacity": np.array([12, 6], dtype=np.float32),
        "promo": np.array([True, False]),
        "last_sale_s": np.array([now - 2 * HOUR, np.nan]),
        "last_refill_s": np.array([now - 5 * HOUR, np.nan]),
        "sales_hourly": hist,
    }
    base.update(changes)
    return StockoutInputs(**base)


def _row(x: np.ndarray[Any, Any], sku: int) -> dict[str, float]:
    return {name: float(x[sku, i]) for i, name in enumerate(FEATURE_NAMES)}


def test_selling_sku_matches_hand_computation() -> None:
    x = build_features(_inputs())
    assert x.shape == (2, N_FEATURES)
    assert x.dtype == np.float32
    got = _row(x, 0)
    # 14-day sales 12: r = 12/14 per day, 6 per week; flat profile: 4/168 of a week ahead.
    want = {
        "on_shelf": 3.0, "fill_ratio": 0.25, "capacity": 12.0, "estimate_source": 3.0,
        "estimate_age_h": 0.5, "sales_1h": 2.0, "sales_3h": 3.0, "sales_24h": 6.0,
        "sales_next_h_last_week": 6.0, "rate_per_day": 12 / 14, "expected_next_h": 6 * 4 / 168,
        "cover_ratio": 3 / (6 * 4 / 168), "days_of_cover": 3 / (12 / 14),
        "poisson_lambda": 6 * 2 / 168, "hours_since_sale": 2.0, "hours_since_refill": 5.0,
        "promo": 1.0, "hour_of_day": 10.0, "day_of_week": 0.0,
        # The store's only logged refill was at 05:00: none in 10-14 h, the next 05:00 in 19 h.
        "walk_share_next_h": 0.0, "hours_to_walk": 19.0,
    }  # fmt: skip
    assert got == pytest.approx(want, rel=1e-5)


def test_silent_sku_uses_floors_and_caps() -> None:
    got = _row(build_features(_inputs()), 1)
    assert got["on_shelf"] == 0.0  # a negative estimate is clipped
    assert got["rate_per_day"] == 0.0
    assert got["cover_ratio"] == 0.0
    assert got["days_of_cover"] == 0.0
    assert got["poisson_lambda"] == 0.0
    assert got["hours_since_sale"] == HISTORY_H
    assert got["hours_since_refill"] == HISTORY_H
    assert got["estimate_age_h"] == 168.0


def test_local_time_uses_the_utc_offset() -> None:
    # 10:00 local on Monday is 09:00 UTC for a store at UTC+1.
    got = _row(build_features(_inputs(now=MONDAY + 9 * HOUR, utc_offset_s=HOUR)), 0)
    assert got["hour_of_day"] == 10.0
    assert got["day_of_week"] == 0.0
    sunday = _row(build_features(_inputs(now=MONDAY - 1.5 * HOUR)), 0)
    assert sunday["day_of_week"] == 6.0
    assert sunday["hour_of_day"] == 22.5


def test_week_profile_weights_the_poisson_gap() -> None:
    profile = np.zeros(168, dtype=np.float32)
    profile[1] = 1.0  # all sales Monday 01:00-02:00
    assert week_position_h(MONDAY, 0.0) % 168 == 0
    pos = week_position_h(np.array([MONDAY + 1.5 * HOUR, MONDAY + 3 * HOUR]), 0.0)
    assert cumulative_share(pos, profile) - np.floor(pos[0] / 168) == pytest.approx([0.5, 1.0])
    # A gap from Sunday 23:00 to Monday 10:00 spans the whole weekly mass: Λ = weekly rate.
    state = _inputs(week_profile=profile, last_sale_s=np.array([MONDAY - HOUR, np.nan]))
    assert _row(build_features(state), 0)["poisson_lambda"] == pytest.approx(6.0)


def test_refill_walk_hours_are_read_across_the_store() -> None:
    now = MONDAY + 10 * HOUR + 1e-3  # a hair past 10:00 still counts the 10:00 walk as ahead
    refills = np.array(
        [now - 22 * HOUR, now - 22 * HOUR, now - 22 * HOUR, now - 17 * HOUR,  # 12:00 and 17:00
         now - 10 * 24 * HOUR, np.nan]  # 10 days old: outside the week read; never refilled
    )  # fmt: skip
    assert refill_walks(refills, now, 0.0, 4.0) == pytest.approx((0.75, 2.0))
    assert refill_walks(refills, now + 4 * HOUR, 0.0, 4.0) == pytest.approx((0.25, 3.0))
    # At UTC+2 the same instants are 14:00 and 19:00 local, and now is 12:00 local.
    assert refill_walks(refills, now, 2 * HOUR, 4.0) == pytest.approx((0.75, 2.0))
    assert refill_walks(np.array([np.nan]), now, 0.0, 4.0) == (0.0, 24.0)


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="sales_hourly"):
        build_features(_inputs(sales_hourly=np.zeros((2, 24), dtype=np.float32)))
    with pytest.raises(ValueError, match="horizon_h"):
        build_features(_inputs(horizon_h=0.0))


def _card() -> dict[str, Any]:
    card: dict[str, Any] = json.loads((MODELS / "stockout.json").read_text())
    return card


def test_shipped_card_matches_the_model_file() -> None:
    card = _card()
    assert hashlib.sha256((MODELS / "stockout.onnx").read_bytes()).hexdigest() == card["sha256"]
    assert tuple(card["feature_names"]) == FEATURE_NAMES
    assert card["input"] == {
        "name": "features",
        "type": "tensor(float)",
        "shape": [None, N_FEATURES],
    }
    assert 0.0 < card["threshold"] < 1.0


def test_shipped_model_scores_the_reference_vector() -> None:
    card = _card()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(MODELS / "stockout.onnx"), opts)
    (inp,) = sess.get_inputs()
    assert (inp.name, inp.type, inp.shape[1]) == ("features", "tensor(float)", N_FEATURES)
    ref = np.array(card["reference"]["input"], dtype=np.float32)
    got = sess.run([card["output"]["name"]], {inp.name: ref})[0]
    np.testing.assert_allclose(got, card["reference"]["probabilities"], rtol=0, atol=1e-5)
    live = sess.run([card["output"]["name"]], {inp.name: build_features(_inputs())})[0]
    assert live.shape == (2, 2)
