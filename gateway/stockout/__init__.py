"""Stockout prediction: the feature builder shared by the daemon and the training tools."""

from gateway.stockout.features import (
    FEATURE_NAMES,
    HISTORY_H,
    N_FEATURES,
    EstimateSource,
    StockoutInputs,
    build_features,
    cumulative_share,
    week_position_h,
)

__all__ = [
    "FEATURE_NAMES",
    "HISTORY_H",
    "N_FEATURES",
    "EstimateSource",
    "StockoutInputs",
    "build_features",
    "cumulative_share",
    "week_position_h",
]
