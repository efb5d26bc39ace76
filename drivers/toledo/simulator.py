"""A Toledo continuous-output indicator on a pseudo-terminal, for tests and demos
(protocols.md §2.2, "How to simulate scales": a periodic writer of frames).

State: weight and tare in kg, motion, overload, net; frames are written every `period`.
Fault switches: `silent` (writes nothing), `garbage` (bytes before the next frame),
`truncate_next` (the next frame loses its second half), `bad_checksum_next`, and
`disconnect()` (the line goes away).
"""

from __future__ import annotations

import asyncio
from collections import deque
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Self

from drivers.toledo.protocol import CR, STX, checksum
from gateway.pty import PtyPair, PtySimulator

MAX_DIGITS = 999_999


def encode_frame(
    weight_kg: float,
    tare_kg: float = 0.0,
    *,
    decimals: int = 2,
    motion: bool = False,
    overload: bool = False,
    net: bool = False,
    tare_field: bool = True,
    with_checksum: bool = False,
) -> bytes:
    """One frame in kg (SWB bit 4), `decimals` digits after the point (SWA codes 2-7)."""
    if not 0 <= decimals <= 5:
        raise ValueError(f"decimals must be 0-5, got {decimals}")
    step = Decimal(10) ** -decimals
    digits = int((abs(Decimal(str(weight_kg))) / step).to_integral_value(ROUND_HALF_EVEN))
    tare = int((Decimal(str(tare_kg)) / step).to_integral_value(ROUND_HALF_EVEN))
    swa = 0x20 | 0x08 | (decimals + 2)  # bit 5 set, increment x1, decimal point code
    swb = 0x20 | 0x10  # bit 5 set, kg
    swb |= 0x01 if net else 0
    swb |= 0x02 if weight_kg < 0 else 0
    swb |= 0x04 if overload else 0
    swb |= 0x08 if motion else 0
    swc = 0x20
    body = bytes([STX, swa, swb, swc]) + b"%06d" % min(digits, MAX_DIGITS)
    if tare_field:
        body += b"%06d" % min(tare, MAX_DIGITS)
    body += bytes([CR])
    return body + bytes([checksum(body)]) if with_checksum else body


class ToledoSimulator(PtySimulator):
    """An indicator behind a pty: open `path` as the driver's port."""

    def __init__(
        self,
        weight_kg: float = 0.0,
        *,
        period: float = 0.05,
        tare_field: bool = True,
        with_checksum: bool = False,
    ) -> None:
        """Stream `weight_kg` every `period` seconds in the given frame layout."""
        self.pty = PtyPair()
        self.weight_kg = weight_kg
        self.tare_kg = 0.0
        self.motion = False
        self.overload = False
        self.period = period
        self.tare_field = tare_field
        self.with_checksum = with_checksum
        self.script: deque[tuple[float, bool]] = deque()
        """(weight_kg, motion) pairs, one per frame, applied before it is built."""
        self.silent = False
        self.garbage = b""
        self.truncate_next = False
        self.bad_checksum_next = False
        self.frames_sent = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._stream(), name="sim:toledo")
        return self

    def frame(self) -> bytes:
        """The next frame from the current state (and faults)."""
        if self.script:
            self.weight_kg, self.motion = self.script.popleft()
        data = encode_frame(
            self.weight_kg,
            self.tare_kg,
            motion=self.motion,
            overload=self.overload,
            net=self.tare_kg > 0,
            tare_field=self.tare_field,
            with_checksum=self.with_checksum,
        )
        if self.bad_checksum_next and self.with_checksum:
            data, self.bad_checksum_next = data[:-1] + bytes([(data[-1] + 1) & 0x7F]), False
        if self.truncate_next:
            data, self.truncate_next = data[: len(data) // 2], False
        if self.garbage:
            data, self.garbage = self.garbage + data, b""
        return data

    async def _stream(self) -> None:
        while not self.pty.closed:
            if not self.silent:
                await self.pty.write(self.frame())
                self.frames_sent += 1
            await asyncio.sleep(self.period)
