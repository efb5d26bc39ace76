"""A device's own serial port: the config fields every serial driver shares, and opening it.

Data bits, parity and stop bits are per device (protocols.md §2.4: scales ship 8N1 or 7E1).
A pseudo-terminal refuses even parity, so tests open their pty 8N1 (contract.md "Serial
timing and tests"). Opening goes through `serial_asyncio_fast`, which opens the port in a
worker thread (a USB adapter can take a while), so the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Literal

import serial_asyncio_fast
from pydantic import BaseModel, ConfigDict, Field

from gateway.config.fields import As
from gateway.config.types import duration

CLOSE_GRACE = 1.0
"""Seconds to wait for a port to close; a wedged USB adapter must not hang a restart."""


class SerialPortFields(BaseModel):
    """Config fields of a device on its own serial port (mixed into a driver's `Config`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: str = Field(
        min_length=1,
        description=(
            "Serial port: a device path (prefer /dev/serial/by-id/...) or a pyserial URL "
            "such as socket://127.0.0.1:7000."
        ),
    )
    baudrate: int = Field(
        9600,
        description="Line speed in baud.",
        json_schema_extra={"enum": [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]},
        ge=300,
        le=921_600,
    )
    bytesize: Literal[7, 8] = Field(8, description="Data bits per character (7 or 8).")
    parity: Literal["N", "E", "O"] = Field("N", description="Parity: N none, E even, O odd.")
    stopbits: Literal[1, 2] = Field(1, description="Stop bits (1 or 2).")
    timeout: Annotated[float, As(duration("50ms", "1m"))] = Field(
        1.0, description="How long to wait for an answer or for the line to speak."
    )


async def open_serial(
    cfg: SerialPortFields, limit: int = 65536
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open the configured port as an asyncio stream pair (raises OSError when it cannot)."""
    reader, writer = await serial_asyncio_fast.open_serial_connection(
        url=cfg.port,
        baudrate=cfg.baudrate,
        bytesize=cfg.bytesize,
        parity=cfg.parity,
        stopbits=cfg.stopbits,
        limit=limit,
    )
    return reader, writer


async def close_serial(writer: asyncio.StreamWriter) -> None:
    """Close a port opened by `open_serial`, waiting at most `CLOSE_GRACE`; never raises."""
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(CLOSE_GRACE):
            await writer.wait_closed()
