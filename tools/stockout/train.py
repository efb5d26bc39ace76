"""Training: LightGBM candidates, selection on validation days, ONNX export (ZipMap off).

Exporter choice per stockout.md "Decisions": LightGBM via onnxmltools (opset <= 15), not
HistGradientBoosting (does not convert). Unweighted binary log-loss keeps the output close
to a probability (pitfall 7); ranking metrics would be the same with class weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import lightgbm
import numpy as np
import numpy.typing as npt
import onnxmltools  # type: ignore[import-untyped]
import onnxruntime as ort
from onnxmltools.convert.common.data_types import (  # type: ignore[import-untyped]
    FloatTensorType,
)
from sklearn.metrics import average_precision_score  # type: ignore[import-untyped]

from gateway.stockout import N_FEATURES

if TYPE_CHECKING:
    from tools.stockout.dataset import Rows

INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
TARGET_OPSET = 15  # onnxmltools 1.16 supports <= 15 (stockout.md)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One model size: trees and leaves (cost is ~linear in trees, stockout.md)."""

    trees: int
    leaves: int

    @property
    def name(self) -> str:
        """Short label, e.g. 100x15."""
        return f"{self.trees}x{self.leaves}"


CANDIDATES = (Candidate(50, 15), Candidate(100, 15), Candidate(200, 31))
SMALL_CANDIDATES = (Candidate(20, 7), Candidate(40, 15))


def fit(rows: Rows, candidate: Candidate, seed: int) -> lightgbm.LGBMClassifier:
    """Fit one candidate deterministically."""
    clf = lightgbm.LGBMClassifier(
        n_estimators=candidate.trees,
        num_leaves=candidate.leaves,
        learning_rate=0.08,
        min_child_samples=100,
        subsample=0.7,
        subsample_freq=1,
        colsample_bytree=0.9,
        reg_lambda=1.0,
        random_state=seed,
        n_jobs=2,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )
    clf.fit(rows.x, rows.y.astype(np.int32))
    return clf


def to_onnx(clf: lightgbm.LGBMClassifier) -> bytes:
    """The classifier as ONNX bytes: one float input [N, F], `probabilities` [N, 2]."""
    model = onnxmltools.convert_lightgbm(
        clf,
        initial_types=[(INPUT_NAME, FloatTensorType([None, N_FEATURES]))],
        target_opset=TARGET_OPSET,
        zipmap=False,  # ZipMap cost 9x the run time on LR (stockout.md)
    )
    model.graph.name = "stockout"  # the converter names it with a random uuid: keep sha256 stable
    data: bytes = model.SerializeToString()
    return data


def session(onnx_bytes: bytes) -> ort.InferenceSession:
    """A one-thread session, as the daemon runs it."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


def score(sess: ort.InferenceSession, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """P(empty within H) per row from the ONNX model."""
    probs = sess.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]
    return np.asarray(probs, dtype=np.float64)[:, 1]


def val_pr_auc(sess: ort.InferenceSession, val: Rows) -> float:
    """Selection metric: PR-AUC on validation forecast rows (the headline subset)."""
    return float(average_precision_score(val.y[val.forecast], score(sess, val.x[val.forecast])))
