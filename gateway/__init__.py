"""storegw: the edge gateway daemon. This module is the public API for driver authors."""

from gateway.config.types import duration, size
from gateway.driver import Clock, DeviceState, Driver, DriverConfig, DriverContext
from gateway.events import Event, Quality, Reading, Sale, TagRead, WeightSample
from gateway.health import Health, HealthState

__version__ = "0.1.0"

__all__ = [
    "Clock",
    "DeviceState",
    "Driver",
    "DriverConfig",
    "DriverContext",
    "Event",
    "Health",
    "HealthState",
    "Quality",
    "Reading",
    "Sale",
    "TagRead",
    "WeightSample",
    "__version__",
    "duration",
    "size",
]
