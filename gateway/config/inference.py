"""The `inference` section: stockout prediction on the gateway (issue 7, docs/inference.md).

Enabled = the daemon loads the stockout model and scores every SKU each `interval`;
disabled = numpy and onnxruntime are never imported (contract.md, memory). An absent
section means no inference (gateway/config/parse.py); a written one, even empty
(`inference:`), enables it with the defaults; `enabled: false` keeps it written but off.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from gateway.config.fields import As, ConfigPath
from gateway.config.sections import Section
from gateway.config.types import duration, size


class HysteresisConfig(Section):
    """When a stockout alert is raised and cleared, so that it does not flap."""

    clear_margin: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="An alert clears only once the risk falls below threshold minus this margin.",
    )
    min_hold: Annotated[float, As(duration("0s", "1d"))] = Field(
        3600.0, description="A raised alert stays raised at least this long."
    )


class InferenceConfig(Section):
    """Stockout prediction: the model, how often it scores, and when it alerts."""

    enabled: bool = Field(
        default=True,
        description="Load the model and score; false keeps the section but loads nothing.",
    )
    model: ConfigPath | None = Field(
        None,
        description="The ONNX model file; its card is the same path with '.json'. "
        "Default: the model shipped with storegw. A model installed remotely "
        "(P/cmd/model) takes precedence until rolled back.",
    )
    interval: Annotated[float, As(duration("1m", "1d"))] = Field(
        900.0, description="How often every SKU is scored (rounds align to the clock)."
    )
    snapshot_interval: Annotated[float, As(duration("1m", "7d"))] = Field(
        3600.0, description="How often every SKU's risk is published, not only the changes."
    )
    min_change: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Between snapshots, a SKU's risk is published when it moved this much.",
    )
    threshold: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="Risk at which an alert is raised; default: the model card's threshold.",
    )
    hysteresis: HysteresisConfig = Field(
        default_factory=HysteresisConfig, description="Alert hysteresis."
    )
    horizon: Annotated[float, As(duration("1h", "7d"))] | None = Field(
        None,
        description="The look-ahead the store expects (e.g. '4h'); a model whose card "
        "states another horizon is refused. Default: whatever the model's card says.",
    )
    max_model_size: Annotated[int, As(size("1KB", "64MB"))] = Field(
        16_000_000, description="Largest model accepted from P/cmd/model."
    )
    max_skus: int = Field(
        20_000, ge=1, le=200_000, description="SKUs tracked at most (sales history memory)."
    )

    @model_validator(mode="after")
    def _margin_below_threshold(self) -> Self:
        if self.threshold is not None and self.hysteresis.clear_margin >= self.threshold:
            raise ValueError("hysteresis.clear_margin must be smaller than threshold")
        return self
