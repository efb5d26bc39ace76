"""Config tests: two tiny drivers, registered by hand (the built-in drivers may not exist)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import Field

from gateway.config import ConfigPath, Secret
from gateway.config.fields import As
from gateway.config.types import duration
from gateway.driver import Driver, DriverConfig, DriverContext
from gateway.plugins import Registry


class MeterConfig(DriverConfig):
    """A serial meter."""

    driver: Literal["meter"] = "meter"
    port: str = Field(description="Serial port path or socket:// URL.")
    baudrate: int = Field(9600, ge=300, le=115_200, description="Line speed in baud.")
    parity: Literal["N", "E", "O"] = Field("N", description="Parity.")
    interval: Annotated[float, As(duration("100ms", "1h"))] = Field(5.0, description="Poll.")
    api_key: Secret | None = Field(None, description="Key for the meter's web API.")
    api_key_file: ConfigPath | None = Field(None, description="File holding api_key.")


class Meter(Driver):
    """Test driver with a serial line."""

    name = "meter"
    summary = "Test meter"
    Config = MeterConfig

    async def run(self, ctx: DriverContext) -> None:
        """Never run by these tests."""


class ScaleConfig(DriverConfig):
    """A network scale."""

    driver: Literal["scale"] = "scale"
    host: str = Field(description="Scale host name or address.")
    tare: float = Field(0.0, ge=0, description="Tare weight in kg.")


class Scale(Driver):
    """Test driver with a TCP endpoint."""

    name = "scale"
    summary = "Test scale"
    Config = ScaleConfig

    async def run(self, ctx: DriverContext) -> None:
        """Never run by these tests."""


def make_registry() -> Registry:
    """A registry with the two test drivers and one plug-in that failed to load."""
    return Registry(
        drivers={"meter": Meter, "scale": Scale},
        errors={"rfid": "cannot load 'rfid_pkg:Rfid': ImportError: no module named 'rfid_pkg'"},
    )


@pytest.fixture
def registry() -> Registry:
    return make_registry()


@pytest.fixture
def cases_dir() -> Path:
    return Path(__file__).parent / "config_cases"
