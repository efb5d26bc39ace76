"""Stockout inference cost: features + score for 10,000 SKUs (1 thread) and RSS of the runtime.

Prints a table and writes bench/results/inference.json. Goal (stockout.md "Decisions"):
one round <= 50 ms for 10,000 SKUs on one thread here; a Raspberry Pi is 2-4x slower per core.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

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
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    start = time.perf_counter()
    sess = ort.InferenceSession(str(args.model), opts, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - start) * 1e3
    after_load = _rss_mb()

    from tools.stockout.speed import round_ms, synthetic_inputs

    feat_ms, score_ms, total_ms = round_ms(sess, synthetic_inputs(args.skus), args.runs)
    result = {
        "skus": args.skus,
        "runs": args.runs,
        "threads": 1,
        "model": args.model.name,
        "model_bytes": args.model.stat().st_size,
        "features_ms_median": round(feat_ms, 2),
        "score_ms_median": round(score_ms, 2),
        "round_ms_median": round(total_ms, 2),
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
