"""Config models of the simulated devices."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway import DriverConfig, duration


class Faults(BaseModel):
    """Fault switches, for demos and tests of supervision."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    crash_every: duration(min="100ms") | None = Field(  # type: ignore[valid-type]
        default=None,
        description="Raise an error after running this long (then again after each restart).",
    )
    hang_after: duration(min="100ms") | None = Field(  # type: ignore[valid-type]
        default=None, description="Stop reporting (hang) after running this long."
    )


class SimMeterConfig(DriverConfig):
    """A simulated three-phase energy meter: cumulative kWh, power, voltage."""

    driver: Literal["sim_meter"] = "sim_meter"
    interval: duration(min="10ms", max="1h") = Field(  # type: ignore[valid-type]
        default=1.0, description="Time between polls."
    )
    seed: int = Field(default=1, description="Random seed: the same seed gives the same values.")
    power_kw: float = Field(default=3.0, gt=0, le=10_000, description="Mean active power in kW.")
    start_kwh: float = Field(default=1000.0, ge=0, description="Energy counter at first start.")
    wrap_kwh: float | None = Field(
        default=None, gt=0, description="Counter rolls over to zero at this value (if set)."
    )
    faults: Faults = Field(default_factory=Faults, description="Fault switches.")


class SimItem(BaseModel):
    """One product the simulated till sells."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str = Field(description="SKU as the till prints it.")
    price: Decimal = Field(gt=0, max_digits=12, decimal_places=4, description="Unit price.")


class SimPosConfig(DriverConfig):
    """A simulated till: sales with consecutive transaction numbers."""

    driver: Literal["sim_pos"] = "sim_pos"
    items: list[SimItem] = Field(min_length=1, description="Products and their prices.")
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")
    sales_per_minute: float = Field(
        default=6.0, gt=0, le=600_000, description="Mean rate of transactions."
    )
    seed: int = Field(default=1, description="Random seed: the same seed gives the same sales.")
    faults: Faults = Field(default_factory=Faults, description="Fault switches.")
