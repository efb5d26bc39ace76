"""Metrics: PR-AUC, recall at precision >= 0.8, and lead time before the shelf empties."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (  # type: ignore[import-untyped]
    average_precision_score,
    precision_recall_curve,
)

from tools.stockout.simulate import TICKS_PER_HOUR

if TYPE_CHECKING:
    from tools.stockout.dataset import Events, Rows

TARGET_PRECISION = 0.8
Scores = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SubsetMetrics:
    """Ranking and thresholded metrics on one subset of rows."""

    rows: int
    base_rate: float
    pr_auc: float
    recall_at_p80: float  # best recall with precision >= 0.8 on this very set
    precision_at_thr: float  # at the threshold chosen on validation days
    recall_at_thr: float


@dataclass(frozen=True, slots=True)
class LeadTime:
    """Alerts before empty events at the chosen threshold (capped by H, pitfall 8)."""

    events: int
    caught_share: float
    median_lead_h: float | None


def threshold_for_precision(y: npt.NDArray[np.bool_], scores: Scores) -> float | None:
    """Lowest threshold whose precision is >= 0.8 (most recall); None if never reached."""
    precision, _, thresholds = precision_recall_curve(y, scores)
    ok = np.nonzero(precision[:-1] >= TARGET_PRECISION)[0]
    return float(thresholds[ok[0]]) if ok.size else None


def subset_metrics(y: npt.NDArray[np.bool_], scores: Scores, thr: float | None) -> SubsetMetrics:
    """Metrics of `scores` against labels `y`."""
    if not y.any():
        return SubsetMetrics(int(y.size), 0.0, 0.0, 0.0, 0.0, 0.0)
    precision, recall, _ = precision_recall_curve(y, scores)
    ok = precision >= TARGET_PRECISION
    alert = scores >= thr if thr is not None else np.zeros(y.size, dtype=bool)
    hits = int((alert & y).sum())
    return SubsetMetrics(
        rows=int(y.size),
        base_rate=float(y.mean()),
        pr_auc=float(average_precision_score(y, scores)),
        recall_at_p80=float(recall[ok].max()) if ok.any() else 0.0,
        precision_at_thr=hits / int(alert.sum()) if alert.any() else 0.0,
        recall_at_thr=hits / int(y.sum()),
    )


def lead_time(
    rows: Rows, scores: Scores, ev: Events, thr: float | None, horizon_h: float
) -> LeadTime:
    """For each event, the first alert in the H hours before it: share caught, median lead."""
    if ev.tick.size == 0:
        return LeadTime(0, 0.0, None)
    if thr is None:
        return LeadTime(int(ev.tick.size), 0.0, None)
    span = np.int64(1) << 32
    alert = scores >= thr
    keys = np.sort((rows.store[alert].astype(np.int64) * 100_000 + rows.sku[alert]) * span
                   + rows.tick[alert])  # fmt: skip
    ev_base = (ev.store.astype(np.int64) * 100_000 + ev.sku) * span
    window = round(horizon_h * TICKS_PER_HOUR)
    first = np.searchsorted(keys, ev_base + ev.tick - window)
    found = np.minimum(first, max(keys.size - 1, 0))
    caught = (first < keys.size) & (keys[found] < ev_base + ev.tick) if keys.size else first < 0
    lead_h = (ev_base + ev.tick - keys[found])[caught] / TICKS_PER_HOUR
    return LeadTime(
        events=int(ev.tick.size),
        caught_share=float(caught.mean()),
        median_lead_h=float(np.median(lead_h)) if lead_h.size else None,
    )


def report(
    rows: Rows, scores: Scores, ev: Events, thr: float | None, horizon_h: float
) -> dict[str, object]:
    """All metrics of one method on one split, JSON-ready."""
    return {
        "all": asdict(subset_metrics(rows.y, scores, thr)),
        "forecast": asdict(subset_metrics(rows.y[rows.forecast], scores[rows.forecast], thr)),
        "lead": asdict(lead_time(rows, scores, ev, thr, horizon_h)),
    }
