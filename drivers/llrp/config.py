"""Config model of an LLRP reader: where it is, what to ask of it, and antenna → zone."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gateway.config.fields import As
from gateway.config.types import duration
from gateway.presence import Antenna, RfidConfig


class LlrpConfig(RfidConfig):
    """A fixed UHF RFID reader speaking LLRP 1.0.1 on TCP (Impinj, Zebra, ...)."""

    driver: Literal["llrp"] = "llrp"
    host: str = Field(min_length=1, description="The reader's host name or IP address.")
    port: int = Field(5084, ge=1, le=65535, description="LLRP TCP port (5084; TLS is not spoken).")
    antennas: list[Antenna] = Field(
        default_factory=list,
        description="Antennas to inventory (1-based); empty means every connected antenna.",
    )
    keepalive: Annotated[float, As(duration("100ms", "10m"))] = Field(
        10.0,
        description="The reader sends a KEEPALIVE this often; three intervals with no "
        "message at all mean the connection is dead and the driver reconnects.",
    )
    reset: Literal["specs", "factory"] = Field(
        "specs",
        description="On connect, 'specs' deletes every ROSpec and AccessSpec left on the "
        "reader; 'factory' also resets the reader's configuration to factory defaults.",
    )
    connect_timeout: Annotated[float, As(duration("100ms", "1m"))] = Field(
        5.0, description="How long connecting and the reader's connection event may take."
    )
    request_timeout: Annotated[float, As(duration("100ms", "1m"))] = Field(
        5.0, description="How long the reader may take to answer one configuration request."
    )
