"""An MT-SICS balance on a pseudo-terminal, for tests and demos (protocols.md §2.1, "How to
simulate scales").

A line-based state machine holding (weight, tare, stable, overload): it answers `S`, `SI`,
`SIR` (a stream until `@`, `S`, `SI` or `SR` arrives), `Z`, `T`, `TAC`, `@` and `I4`, and
`ES` to anything else. Fault switches: `silent` (answers nothing), `garbage` (bytes sent
before the next reply), `truncate_next` (the next reply loses its tail and line end),
`disconnect()` (the line goes away). `script` feeds (weight, stable) pairs, one per weight
reply, for a scale that bounces between stable and dynamic.
"""

from __future__ import annotations

import asyncio
from collections import deque
from decimal import Decimal
from typing import Self

from drivers.mt_sics.protocol import UNIT_KG
from gateway.pty import PtyPair, PtySimulator

CRLF = b"\r\n"
_CANCELS_REPEAT = frozenset({"@", "S", "SI", "SR"})


class MtSicsSimulator(PtySimulator):
    """A balance behind a pty: open `path` as the driver's port."""

    def __init__(
        self,
        weight_kg: float = 0.0,
        *,
        unit: str = "g",
        decimals: int = 2,
        serial: str = "0123456789",
        repeat_interval: float = 0.05,
    ) -> None:
        """Start empty or loaded with `weight_kg`; replies print the weight in `unit`."""
        if unit not in UNIT_KG:
            raise ValueError(f"unknown unit {unit!r}")
        self.pty = PtyPair()
        self.weight_kg = weight_kg
        self.tare_kg = 0.0
        self.stable = True
        self.overload = False
        self.unit = unit
        self.decimals = decimals
        self.serial = serial
        self.repeat_interval = repeat_interval
        self.script: deque[tuple[float, bool]] = deque()
        """(weight_kg, stable) pairs applied one per weight reply, before it is built."""
        self.silent = False
        self.garbage = b""
        self.truncate_next = False
        self.commands: list[str] = []
        """Every command line the driver sent, in order."""
        self._heard = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._repeat: asyncio.Task[None] | None = None

    def _tasks(self) -> tuple[asyncio.Task[None] | None, ...]:
        return (self._repeat, self._task)

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._serve(), name="sim:mt_sics")
        return self

    async def heard(self, command: str, count: int = 1, within: float = 5.0) -> None:
        """Wait until the driver has sent `command` `count` times (TimeoutError after `within`)."""
        async with asyncio.timeout(within):
            while self.commands.count(command) < count:
                self._heard.clear()
                await self._heard.wait()

    def weight_line(self, immediate: bool) -> bytes:
        """The reply to `SI` (immediate) or `S`, from the current state."""
        if self.script:
            self.weight_kg, self.stable = self.script.popleft()
        if self.overload:
            return b"S +" + CRLF
        if not immediate and not self.stable:
            return b"S I" + CRLF  # `S` found no stable weight in time
        value = Decimal(str(self.weight_kg - self.tare_kg)) / UNIT_KG[self.unit]
        text = f"{value:.{self.decimals}f}"
        return f"S {'S' if self.stable else 'D'} {text:>10} {self.unit}".encode() + CRLF

    async def _send(self, data: bytes) -> None:
        if self.garbage:
            data, self.garbage = self.garbage + data, b""
        if self.truncate_next:
            data, self.truncate_next = data[: max(1, len(data) // 2)], False
        await self.pty.write(data)

    async def _serve(self) -> None:
        while True:
            raw = await self.pty.readline(b"\n")
            if not raw:
                return
            command = raw.strip().decode("ascii", errors="replace")
            self.commands.append(command)
            self._heard.set()
            if command in _CANCELS_REPEAT and self._repeat is not None:
                self._repeat.cancel()
                self._repeat = None
            if self.silent:
                continue
            reply = self._answer(command)
            if reply:
                await self._send(reply)

    def _answer(self, command: str) -> bytes:
        if command == "SI":
            return self.weight_line(immediate=True)
        if command == "S":
            return self.weight_line(immediate=False)
        if command == "SIR":
            self._repeat = asyncio.create_task(self._stream(), name="sim:mt_sics:sir")
            return b""
        if command == "@":
            return f'I4 A "{self.serial}"'.encode() + CRLF
        if command == "I4":
            return f'I4 A "{self.serial}"'.encode() + CRLF
        if command == "Z":
            self.tare_kg, self.weight_kg = 0.0, 0.0
            return b"Z A" + CRLF
        if command == "T":
            self.tare_kg = self.weight_kg
            return f"T S {0:>10.{self.decimals}f} {self.unit}".encode() + CRLF
        if command == "TAC":
            self.tare_kg = 0.0
            return b"TAC A" + CRLF
        return b"ES" + CRLF

    async def _stream(self) -> None:
        while True:
            if not self.silent:
                await self._send(self.weight_line(immediate=True))
            await asyncio.sleep(self.repeat_interval)
