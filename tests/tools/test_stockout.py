"""Stockout training end to end (--small), plus the label and metric rules on hand-made cases."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from gateway.stockout import N_FEATURES
from tools.stockout.__main__ import run
from tools.stockout.dataset import Events, Rows, labels
from tools.stockout.evaluate import lead_time, threshold_for_precision
from tools.stockout.simulate import StoreRun, simulate_store
from tools.stockout.stores import TRAIN_STORES, small

if TYPE_CHECKING:
    from pathlib import Path


def test_small_training_run_writes_a_consistent_model(tmp_path: Path) -> None:
    card = run(tmp_path, is_small=True, seed=7, horizon_h=4.0)
    onnx_bytes = (tmp_path / "stockout.onnx").read_bytes()
    assert hashlib.sha256(onnx_bytes).hexdigest() == card["sha256"]
    assert "Verdict" in (tmp_path / "README.md").read_text()
    sess = ort.InferenceSession(onnx_bytes)
    ref = np.array(card["reference"]["input"], dtype=np.float32)
    assert ref.shape == (8, N_FEATURES)
    got = sess.run(["probabilities"], {"features": ref})[0]
    np.testing.assert_allclose(got, card["reference"]["probabilities"], atol=1e-5)
    for split in ("test", "heldout_store"):
        model = card["metrics"][split]["model"]
        assert model["all"]["rows"] > 0
        # Ranking must be better than chance on the simulator's own rows.
        assert model["all"]["pr_auc"] > model["all"]["base_rate"]


def test_simulator_is_reproducible() -> None:
    config = small(TRAIN_STORES[0], 8)
    a = simulate_store(config, 2, 4.0, seed=3)
    b = simulate_store(config, 2, 4.0, seed=3)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.shelf, b.shelf)
    assert a.features.shape == (8 * 2 * 15, N_FEATURES)  # 8 SKUs, 2 days, 15 open hours


def test_labels_look_h_ahead_inclusive() -> None:
    # One SKU; shelf per 15-min tick: empties at tick 20, refilled at tick 22.
    shelf = np.full((1, 40), 5, dtype=np.int16)
    shelf[0, 20:22] = 0
    ticks = np.array([0, 4, 8, 20, 24], dtype=np.int32)
    store_run = StoreRun(
        config=TRAIN_STORES[0],
        features=np.zeros((5, N_FEATURES), np.float32),
        sku=np.zeros(5, np.int32),
        tick=ticks,
        shelf=shelf,
        day=np.zeros(5, np.int16),
    )
    label, forecast = labels(store_run, horizon_h=3.0)  # 12 ticks ahead
    assert label.tolist() == [False, False, True, True, False]
    assert forecast.tolist() == [True, True, True, False, True]


def _rows(ticks: list[int]) -> Rows:
    n = len(ticks)
    return Rows(
        x=np.zeros((n, N_FEATURES), np.float32),
        y=np.zeros(n, bool),
        forecast=np.ones(n, bool),
        store=np.zeros(n, np.int32),
        sku=np.zeros(n, np.int32),
        tick=np.array(ticks, np.int32),
    )


def test_lead_time_takes_the_first_alert_within_h() -> None:
    rows = _rows([100, 104, 108, 112, 196])
    scores = np.array([0.9, 0.2, 0.9, 0.9, 0.1])
    ev = Events(np.zeros(2, np.int32), np.zeros(2, np.int32), np.array([114, 200], np.int32))
    got = lead_time(rows, scores, ev, thr=0.5, horizon_h=3.0)
    # Event at 114: alerts at 108 and 112 lie within 12 ticks; 100 is too early. Lead 6 ticks.
    assert got.events == 2
    assert got.caught_share == 0.5
    assert got.median_lead_h == 1.5


def test_threshold_reaches_the_target_precision() -> None:
    y = np.array([True, True, False, True, False, False])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert threshold_for_precision(y, scores) == 0.8
    assert threshold_for_precision(np.array([False, True, False, True]), scores[:4]) is None
