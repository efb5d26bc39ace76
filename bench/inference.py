"""Stockout inference cost: features + score for 10,000 SKUs (1 thread) and RSS of the runtime.

Prints a table and writes bench/results/inference.json. Goal (stockout.md "Decisions"):
one round <= 50 ms for 10,000 SKUs on one thread here; a Raspberry Pi is 2-4x slower per core.

Two measurements of a round: `round_ms_median` is the bare builder + session on synthetic
feature inputs (tools/stockout/speed.py, as in models/README.md); `runtime_*` goes through
the daemon's own path (gateway/stockout/runtime.py): copying 14 days of hourly sales out of
the `SalesHistory`, reading 10,000 `ShelfEstimate`s, sliding the hours to a mid-hour `now`,
building the features and scoring them. The model is loaded with `gateway.model_store`
(all its checks), so `rss_load_model_mb` is what the daemon pays for it.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script (`make bench`): the repo root holds `tools/`, which is not installed.
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    """Current resident set size in MB (Linux /proc), falling back to the peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _runtime_state(n: int, now: float) -> tuple[Any, dict[str, Any], dict[str, int]]:
    """A SalesHistory with 14 days of sales, estimates and capacities for n SKUs."""
    import numpy as np

    from gateway.estimates import EstimateSource, ShelfEstimate
    from gateway.stockout.history import WIDTH, SalesHistory

    rng = np.random.default_rng(1)
    history = SalesHistory(n)
    history.advance(now - (WIDTH - 1) * 3600)
    skus = [f"SKU{i:06d}" for i in range(n)]
    for sku in skus:
        history.row(sku)
    history.advance(now)
    rate = rng.lognormal(np.log(3.0), 1.0, n) / 24
    history._counts[:n] = rng.poisson(rate[:, None], (n, WIDTH)).astype(np.float32)
    history._last_sale[:n] = now - rng.exponential(3 * 3600.0, n)
    sources = list(EstimateSource)
    capacity = np.clip(np.round(rate * 72), 3, 80).astype(int)
    estimates = {
        sku: ShelfEstimate(
            sku,
            float(rng.integers(0, capacity[i] + 1)),
            sources[i % len(sources)],
            now - float(rng.uniform(0, 86_400)),
            last_refill=now - float(rng.uniform(0, 172_800)),
            capacity=int(capacity[i]),
        )
        for i, sku in enumerate(skus)
    }
    return history, estimates, {sku: int(capacity[i]) for i, sku in enumerate(skus)}


def _runtime_round_ms(model: Any, n: int, runs: int) -> tuple[float, float, float, float]:
    """Median ms of (copy out of the history, features, score, the whole round)."""
    from gateway.stockout.runtime import RoundInput, score_round

    now = 1_717_405_200.0 + 1800  # a Monday 09:30 UTC: mid-hour, so the slide runs too
    history, estimates, capacities = _runtime_state(n, now)
    copy, feat, score, total = [], [], [], []
    for _ in range(runs + 1):
        start = time.perf_counter()
        sales, last_sale = history.window(now)
        inp = RoundInput(
            now, 3600.0, 4.0, list(history.skus), sales, last_sale,
            history.first_hour, dict(estimates), capacities,
        )  # fmt: skip
        copied = time.perf_counter()
        result = score_round(inp, model.score)
        end = time.perf_counter()
        assert len(result.skus) == n
        copy.append((copied - start) * 1e3)
        feat.append(result.features_ms)
        score.append(result.score_ms)
        total.append((end - start) * 1e3)
    med = statistics.median
    return med(copy[1:]), med(feat[1:]), med(score[1:]), med(total[1:])


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "stockout.onnx")
    args = parser.parse_args()

    import numpy as np  # noqa: F401  (numpy is already needed before the runtime: count it apart)

    from gateway.stockout import build_features  # noqa: F401

    base = _rss_mb()
    start = time.perf_counter()
    import onnxruntime as ort

    import_s = time.perf_counter() - start
    after_import = _rss_mb()
    from gateway.model_store import CONFIGURED, ModelSource, load_model

    source = ModelSource(CONFIGURED, str(args.model), str(args.model.with_suffix(".json")))
    data, card = source.read()
    start = time.perf_counter()
    model = load_model(data, card, source)  # every check of the daemon's load path
    load_ms = (time.perf_counter() - start) * 1e3
    after_load = _rss_mb()

    from tools.stockout.speed import round_ms, synthetic_inputs

    feat_ms, score_ms, total_ms = round_ms(model.session, synthetic_inputs(args.skus), args.runs)
    rt_copy, rt_feat, rt_score, rt_total = _runtime_round_ms(model, args.skus, args.runs)
    result = {
        "skus": args.skus,
        "runs": args.runs,
        "threads": 1,
        "model": args.model.name,
        "model_bytes": args.model.stat().st_size,
        "features_ms_median": round(feat_ms, 2),
        "score_ms_median": round(score_ms, 2),
        "round_ms_median": round(total_ms, 2),
        "runtime_copy_ms_median": round(rt_copy, 2),
        "runtime_features_ms_median": round(rt_feat, 2),
        "runtime_score_ms_median": round(rt_score, 2),
        "runtime_round_ms_median": round(rt_total, 2),
        "budget_ms": 50.0,
        "import_onnxruntime_s": round(import_s, 3),
        "load_model_ms": round(load_ms, 1),
        "rss_import_onnxruntime_mb": round(after_import - base, 1),
        "rss_load_model_mb": round(after_load - after_import, 1),
        "rss_total_mb": round(after_load, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
    }
    print(f"{'metric':<28} value")
    for key, value in result.items():
        print(f"{key:<28} {value}")
    out = ROOT / "bench" / "results" / "inference.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
