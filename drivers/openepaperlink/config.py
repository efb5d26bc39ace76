"""Config model of the OpenEPaperLink access point driver."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.actuator import LabelDeviceConfig
from gateway.config.fields import As
from gateway.config.types import duration


class TextPlace(BaseModel):
    """Where and how one text line is drawn (OEPL drawing script `text` element)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: int = Field(ge=0, le=2000, description="Anchor x in pixels.")
    y: int = Field(ge=0, le=2000, description="Anchor y in pixels.")
    font: str = Field(min_length=1, description="Font file on the AP, e.g. fonts/bahnschrift30.")
    color: str = Field("black", description="Colour name or number (0 white, 1 black, 2 red).")
    align: Literal[0, 1, 2] = Field(0, description="0 left, 1 centre, 2 right of the anchor.")


Line = Literal["title", "price", "promo", "unit_price"]


def _default_layout() -> dict[Line, TextPlace]:
    # Laid out for the common 2.9" tag (296 x 128, type 01.json).
    return {
        "title": TextPlace(x=5, y=8, font="fonts/bahnschrift20"),
        "price": TextPlace(x=290, y=40, font="fonts/bahnschrift70", align=2),
        "promo": TextPlace(x=5, y=40, font="fonts/bahnschrift30", color="red"),
        "unit_price": TextPlace(x=5, y=105, font="fonts/bahnschrift20"),
    }


class OpenEPaperLinkConfig(LabelDeviceConfig):
    """An OpenEPaperLink access point on the local network (plain HTTP, no authentication)."""

    driver: Literal["openepaperlink"] = "openepaperlink"
    url: str = Field(
        pattern=r"^https?://[^/\s]+/?$",
        description="The access point's base URL, e.g. http://192.168.1.50.",
    )
    request_timeout: Annotated[float, As(duration("100ms", "2m"))] = Field(
        30.0, description="Timeout of one HTTP request (a malformed upload gets no answer)."
    )
    refresh: Annotated[float, As(duration("1s", "1h"))] = Field(
        60.0,
        description="Re-read all tags from /get_db this often (catches missed WebSocket events).",
    )
    reconnect: Annotated[float, As(duration("100ms", "10m"))] = Field(
        5.0, description="Longest wait before reconnecting to an unreachable access point."
    )
    set_time: bool = Field(
        default=True,
        description="Set the AP clock from the gateway at each connect (/set_time), so tag "
        "update times compare with upload times even without internet.",
    )
    width: int = Field(296, ge=8, le=2000, description="Tag width in pixels.")
    height: int = Field(128, ge=8, le=2000, description="Tag height in pixels.")
    layout: dict[Line, TextPlace] = Field(
        default_factory=_default_layout,
        description="Where each label line is drawn; a line left out is not drawn.",
    )
