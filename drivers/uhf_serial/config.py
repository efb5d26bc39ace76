"""Config model of a serial UHF RFID reader on its own serial port."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from gateway.config.fields import As
from gateway.config.types import duration
from gateway.presence import Antenna, RfidConfig
from gateway.serial_port import SerialPortFields


class UhfProtocol(StrEnum):
    """The reader module's protocol family (README: which readers speak which)."""

    R2000 = "r2000"  # head byte 0xA0: Impinj R2000/E710 modules, 1/4/8-port readers
    M100 = "m100"  # head byte 0xBB: Magicrf M100/QM100 modules (M5Stack UHF, R200)


class UhfSerialConfig(RfidConfig, SerialPortFields):
    """A UHF RFID reader module or desktop reader on RS-232/RS-485/USB serial."""

    driver: Literal["uhf_serial"] = "uhf_serial"
    protocol: UhfProtocol = Field(
        description="r2000: 0xA0 frames (Impinj R2000/E710 readers); m100: 0xBB frames "
        "(Magicrf M100/QM100 modules)."
    )
    baudrate: int = Field(
        115_200,
        ge=300,
        le=921_600,
        description="Line speed in baud: 115200 for both families out of the box (some "
        "R2000 readers are set to 38400).",
    )
    address: int = Field(
        0xFF,
        ge=0,
        le=0xFF,
        description="R2000 reader address on an RS-485 line; 255 reaches any reader (one "
        "reader on the line).",
    )
    antennas: list[Antenna] = Field(
        default_factory=lambda: [1],
        min_length=1,
        description="R2000 antenna ports to inventory, one round each in turn (M100 "
        "modules have one antenna).",
    )
    ports: Literal[4, 8] = Field(
        4,
        description="R2000 reader size: 8-port firmware carries antenna bit 2 in the RSSI "
        "byte's top bit.",
    )
    poll_count: int = Field(
        10_000,
        ge=1,
        le=65_535,
        description="M100 rounds per multiple-polling command; the driver sends it again "
        "when the module falls quiet.",
    )
    timeout: Annotated[float, As(duration("50ms", "1m"))] = Field(
        1.0, description="How long an inventory round may stay silent before it counts as missed."
    )
    max_missed: int = Field(
        3,
        ge=1,
        le=100,
        description="Silent rounds in a row (no frame for `timeout`) before the port is reopened.",
    )
