"""`python -m tools.stockout --out models/`: simulate, train, evaluate, export, write the card."""

from __future__ import annotations

import argparse
import hashlib
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from gateway.stockout import N_FEATURES
from tools.stockout import card as card_mod
from tools.stockout import train
from tools.stockout.baselines import BASELINES
from tools.stockout.dataset import DaySplit, Rows, events, select
from tools.stockout.evaluate import report, threshold_for_precision
from tools.stockout.simulate import (
    RFID_STRAY_PER_READ,
    SCALE_DRIFT_G_PER_DAY,
    SCALE_NOISE_G,
    TICKS_PER_HOUR,
    WARMUP_DAYS,
    simulate_store,
)  # fmt: skip
from tools.stockout.speed import round_ms, synthetic_inputs
from tools.stockout.stores import DOW_MULT, HELDOUT_STORE, TRAIN_STORES, StoreConfig, small

VERSION = "1.1.0"
BUDGET_MS = 50.0
STACK = ("numpy", "scikit-learn", "lightgbm", "onnxmltools", "skl2onnx", "onnx", "onnxruntime")


def _stores(is_small: bool) -> tuple[list[StoreConfig], int]:
    if is_small:
        return [
            small(TRAIN_STORES[0], 40),
            small(TRAIN_STORES[2], 40),
            small(HELDOUT_STORE, 40),
        ], 12
    return [*TRAIN_STORES, HELDOUT_STORE], 56


def run(out: Path, is_small: bool, seed: int, horizon_h: float) -> dict[str, Any]:
    """The whole pipeline; returns the card (also written to `out`)."""
    configs, days = _stores(is_small)
    runs = [simulate_store(cfg, days, horizon_h, seed + i) for i, cfg in enumerate(configs)]
    train_ids, held_id = list(range(len(configs) - 1)), len(configs) - 1
    split = DaySplit.for_days(days)
    tr = select(runs, train_ids, split.train, horizon_h)
    val = select(runs, train_ids, split.val, horizon_h)
    sets = {
        "test": (select(runs, train_ids, split.test, horizon_h),
                 events(runs, train_ids, split.test)),
        "heldout_store": (select(runs, [held_id], (0, days), horizon_h),
                          events(runs, [held_id], (0, days))),
    }  # fmt: skip

    bench_state = synthetic_inputs(10_000, seed)
    candidates = train.SMALL_CANDIDATES if is_small else train.CANDIDATES
    fitted = []
    speed: list[dict[str, Any]] = []
    for cand in candidates:
        onnx_bytes = train.to_onnx(train.fit(tr, cand, seed))
        sess = train.session(onnx_bytes)
        feat_ms, score_ms, round_total = round_ms(sess, bench_state, 3 if is_small else 30)
        speed.append({"name": cand.name, "val_pr_auc": train.val_pr_auc(sess, val),
                      "features_ms": feat_ms, "score_ms": score_ms, "round_ms": round_total,
                      "bytes": len(onnx_bytes)})  # fmt: skip
        fitted.append((cand, onnx_bytes, sess))
    # Best within the budget, then the smallest within 0.01 of it (a faster-than-budget
    # candidate must not lose to one that could never ship).
    fits = [row["round_ms"] <= BUDGET_MS for row in speed]
    best = max(row["val_pr_auc"] for row, ok in zip(speed, fits, strict=True) if ok)
    pick = next(i for i, row in enumerate(speed)
                if row["val_pr_auc"] >= best - 0.01 and fits[i])  # fmt: skip
    cand, onnx_bytes, sess = fitted[pick]

    scorers = {"model": lambda x: train.score(sess, x), **BASELINES}
    # Precision over every alert staff would see (empty now or within H), on validation days.
    thresholds = {name: threshold_for_precision(val.y, fn(val.x)) for name, fn in scorers.items()}
    metrics: dict[str, Any] = {}
    for split_name, (rows, ev) in sets.items():
        metrics[split_name] = {
            name: report(rows, fn(rows.x), ev, thresholds[name], horizon_h)
            for name, fn in scorers.items()
        }
    ref_x = _reference_rows(sets["test"][0], seed)
    ref_probs = sess.run([train.OUTPUT_NAME], {train.INPUT_NAME: ref_x})[0]
    card = {
        "name": "stockout",
        "version": VERSION,
        "horizon_h": horizon_h,
        "label": "1 if the shelf holds 0 units at some moment in [t, t+H]; rows at every full"
        " hour the store is open. In the simulator the truth is known; on real data confirm"
        " an empty shelf by a second source or a following refill (stockout.md pitfall 4).",
        "features": card_mod.features_doc(),
        "feature_names": [f["name"] for f in card_mod.features_doc()],
        "input": {"name": train.INPUT_NAME, "type": "tensor(float)", "shape": [None, N_FEATURES]},
        "output": {"name": train.OUTPUT_NAME, "type": "tensor(float)", "shape": [None, 2],
                   "positive_column": 1},
        "threshold": thresholds["model"],
        "threshold_rule": "lowest score with precision >= 0.8 over all validation-day rows"
        " (every alert staff see)",
        "thresholds": thresholds,
        "calibration": "none: unweighted log-loss; scores are close to probabilities",
        "model": {"library": "lightgbm", "size": cand.name, "trees": cand.trees,
                  "leaves": cand.leaves, "exporter": "onnxmltools.convert_lightgbm",
                  "opset": {"": train.TARGET_OPSET, "ai.onnx.ml": 1}, "zipmap": False},
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "training": _training_doc(configs, days, split, seed, tr, val, sets),
        "metrics": metrics,
        "reference": {"input": ref_x.tolist(), "probabilities": ref_probs.tolist(),
                      "tolerance": 1e-5},
        "stack": {name: version(name) for name in STACK},
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "stockout.onnx").write_bytes(onnx_bytes)
    (out / "stockout.json").write_text(json.dumps(card, indent=1, ensure_ascii=False) + "\n")
    (out / "README.md").write_text(card_mod.readme(card, speed))
    return card


def _reference_rows(rows: Rows, seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Eight test rows for the load-time self-test: four positives and four negatives."""
    rng = np.random.default_rng(seed)
    pos = rng.choice(np.nonzero(rows.y)[0], 4, replace=False)
    neg = rng.choice(np.nonzero(~rows.y)[0], 4, replace=False)
    return np.ascontiguousarray(rows.x[np.concatenate([pos, neg])], dtype=np.float32)


def _training_doc(
    configs: list[StoreConfig], days: int, split: DaySplit, seed: int,
    tr: Rows, val: Rows, sets: dict[str, tuple[Rows, Any]],
) -> dict[str, Any]:  # fmt: skip
    return {
        "data": "store simulator (tools/stockout): 15-min ticks, censored sales, refill walks,"
        " deliveries from a wrong book, shrink, mis-scans, RFID/scale noise",
        "seed": seed,
        "days_after_warmup": days,
        "warmup_days": WARMUP_DAYS,
        "ticks_per_hour": TICKS_PER_HOUR,
        "split_days": {"train": split.train, "validation": split.val, "test": split.test},
        "train_stores": [c.card() for c in configs[:-1]],
        "heldout_store": configs[-1].card(),
        "constants": {"dow_mult": DOW_MULT, "rfid_stray_per_read": RFID_STRAY_PER_READ,
                      "scale_noise_g": SCALE_NOISE_G,
                      "scale_drift_g_per_day": SCALE_DRIFT_G_PER_DAY,
                      "rfid_read_p": [0.85, 0.98], "unit_weight_spread": 0.02,
                      "receiving_miscount": "5 % of lines, +-3 units", "promo_lift": [1.5, 3.0],
                      "unplanned_lift": [1.5, 2.5], "rate_clip_per_day": [0.1, 60.0]},
        "rows": {"train": int(tr.y.size), "validation": int(val.y.size),
                 **{k: int(v[0].y.size) for k, v in sets.items()}},
        "positives_train": float(tr.y.mean()),
    }  # fmt: skip


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m tools.stockout", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--small", action="store_true", help="tiny run for tests (seconds)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--horizon", type=float, default=4.0, help="H in hours")
    args = parser.parse_args()
    card = run(args.out, args.small, args.seed, args.horizon)
    beats, misses = card_mod.verdict(card["metrics"])
    print(f"wrote {args.out}/stockout.onnx ({card['model']['size']}), sha256 {card['sha256'][:12]}")
    print("beats both baselines" if beats else "does NOT beat: " + "; ".join(misses))


if __name__ == "__main__":
    main()
