"""The `dlt645` device entry: the meter's link and address, what to read, how often."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from drivers.dlt645.identifiers import BY_NAME, DataId, tariff_energy
from gateway import DriverConfig
from gateway.config.fields import As
from gateway.config.types import duration

_TARIFF = re.compile(r"^(import|export)_active_energy_t([1-9]|[1-5][0-9]|6[0-3])$")
DEFAULT_METRICS = (
    "import_active_energy",
    "voltage_a",
    "current_a",
    "active_power",
    "power_factor",
    "frequency",
)


def data_id(name: str) -> DataId:
    """The data identifier of metric `name` (the table's, or a tariff `..._tN`)."""
    if name in BY_NAME:
        return BY_NAME[name]
    match = _TARIFF.match(name)
    if match:
        return tariff_energy(int(match.group(2)), export=match.group(1) == "export")
    known = ", ".join(sorted(BY_NAME))
    raise ValueError(f"unknown metric '{name}'; known: {known}, or import/export_active_energy_tN")


class Dlt645Config(DriverConfig):
    """One DL/T 645-2007 meter on a serial link, addressed by its 12-digit address."""

    driver: Literal["dlt645"] = "dlt645"
    link: str = Field(description="Id of the `links:` entry (RS-485 bus, 2400 8E1 usually).")
    address: str | None = Field(
        None,
        description="12 digits as printed on the nameplate; omitted: read it with the "
        "wildcard address (only one meter on the line!).",
    )
    metrics: list[str] = Field(
        default_factory=lambda: list(DEFAULT_METRICS),
        min_length=1,
        description="What to read, by name (see README), one request each.",
    )
    interval: Annotated[float, As(duration("1s", "1h"))] = Field(
        10.0, description="Time between polls."
    )
    offset: Annotated[float, As(duration("0ms", "1h"))] = Field(
        0.0, description="Shift of this meter's polls, to spread meters on one bus."
    )
    jitter: Annotated[float, As(duration("0ms", "1m"))] = Field(
        0.0, description="Random extra delay (0 to this) added to each poll."
    )
    timeout: Annotated[float, As(duration("10ms", "30s"))] | None = Field(
        None, description="Reply timeout per request; default the link's (1s)."
    )
    retries: int = Field(0, ge=0, le=5, description="Repeat a request that got no valid reply.")
    pause: Annotated[float, As(duration("0ms", "10s"))] = Field(
        0.0, description="Extra silence before this meter's requests."
    )
    preamble: bool = Field(
        default=True, description="Send the four FE wake-up bytes before requests."
    )
    dead_after: int = Field(
        3, ge=1, le=1000, description="Failed polls in a row before the meter counts as dead."
    )
    dead_max: Annotated[float, As(duration("1s", "1h"))] = Field(
        60.0, description="While dead, polls slow down (doubling) to at most this interval."
    )

    @field_validator("address")
    @classmethod
    def _digits(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{12}", value):
            raise ValueError(f"'{value}' is not a meter address: write the 12 digits printed")
        return value

    @field_validator("metrics")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        for name in names:
            data_id(name)
        if len(set(names)) != len(names):
            raise ValueError("a metric is listed twice")
        return names
