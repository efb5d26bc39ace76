"""Config model of a Toledo continuous-output indicator on its own serial port."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gateway import DriverConfig
from gateway.config.fields import As
from gateway.config.types import duration
from gateway.serial_port import SerialPortFields
from gateway.shelf_binding import ShelfScaleFields


class ToledoConfig(DriverConfig, SerialPortFields, ShelfScaleFields):
    """A scale indicator streaming Toledo continuous output (protocols.md §2.2)."""

    driver: Literal["toledo"] = "toledo"
    tare_field: bool = Field(
        default=True,
        description=(
            "The frames carry the six tare digits (17 bytes up to CR); false for the short "
            "variant (11 bytes). Must match the indicator's setup."
        ),
    )
    checksum: bool = Field(
        default=False, description="A checksum byte follows each frame's CR (indicator setting)."
    )
    interval: Annotated[float, As(duration("0ms", "1h"))] = Field(
        0.25,
        description=(
            "Emit at most one weight per interval (the indicator sends 7-20 a second); a "
            "change of stability or a fault is emitted at once. 0ms emits every frame."
        ),
    )
    timeout: Annotated[float, As(duration("50ms", "1m"))] = Field(
        1.0, description="The line is silent (no valid frame) after this long."
    )
    max_missed: int = Field(
        3,
        ge=1,
        le=100,
        description="Timeouts in a row without a valid frame before reconnecting.",
    )
