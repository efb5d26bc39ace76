"""Config model of an MT-SICS balance or weigh module on its own serial port."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from gateway import DriverConfig
from gateway.config.fields import As
from gateway.config.types import duration
from gateway.serial_port import SerialPortFields
from gateway.shelf_binding import ShelfScaleFields


class Mode(StrEnum):
    """How weights are asked for (protocols.md §2.1, trap 2)."""

    POLL = "poll"  # send `SI` every `interval`: one line per poll, the line stays quiet
    STREAM = "stream"  # send `SIR` once: the balance repeats the weight until cancelled


class MtSicsConfig(DriverConfig, SerialPortFields, ShelfScaleFields):
    """A Mettler Toledo MT-SICS balance, weigh module or compatible indicator."""

    driver: Literal["mt_sics"] = "mt_sics"
    mode: Mode = Field(
        Mode.POLL,
        description=(
            "poll: ask `SI` every interval (the usual choice); stream: ask `SIR` once and "
            "read the repeated weights (several a second: more load on the line)."
        ),
    )
    interval: Annotated[float, As(duration("50ms", "1h"))] = Field(
        1.0, description="Time between `SI` polls (poll mode)."
    )
    timeout: Annotated[float, As(duration("50ms", "1m"))] = Field(
        1.0, description="How long to wait for the balance's answer (or next streamed line)."
    )
    max_missed: int = Field(
        3,
        ge=1,
        le=100,
        description="Unanswered polls in a row (or timeouts in stream mode) before reconnecting.",
    )
