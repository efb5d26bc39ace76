"""The two baselines any model must beat (stockout.md "The two baselines"), from feature rows.

Both read columns the feature builder already computes, so they see exactly the model's
information: q̂, r (trailing 14-day recorded sales/day) and Λ with hour-of-week shares.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from gateway.stockout import FEATURE_NAMES

_DOC = FEATURE_NAMES.index("days_of_cover")
_LAMBDA = FEATURE_NAMES.index("poisson_lambda")

Scorer = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float64]]


def days_of_cover(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Score -DoC, DoC = q̂ / max(r, 0.01) days (the rule alerts when DoC·24 < H)."""
    return -x[:, _DOC].astype(np.float64)


def poisson_gap(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Score 1 - e^(-Λ), Λ = expected sales since the last recorded sale (rule: Λ > 3)."""
    return 1.0 - np.exp(-x[:, _LAMBDA].astype(np.float64))


def rule_thresholds(horizon_h: float) -> dict[str, float]:
    """Each baseline's published rule as a threshold on its score."""
    return {"days_of_cover": -horizon_h / 24.0, "poisson_gap": 1.0 - float(np.exp(-3.0))}


BASELINES: dict[str, Scorer] = {"days_of_cover": days_of_cover, "poisson_gap": poisson_gap}
