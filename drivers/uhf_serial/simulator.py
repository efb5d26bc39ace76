"""A serial UHF reader simulator on a pseudo-terminal: R2000 (0xA0) or M100 (0xBB).

The driver opens `path` (8N1, contract.md "Serial timing and tests"); the simulator
answers on the other end as protocols.md §1.3/§1.4 describe. R2000: set work antenna
(0x74), real-time inventory (0x89) → one frame per tag on the work antenna, then an
end-of-round frame, error 0x36 when no tag, 0x22 when the antenna is missing. M100:
multiple polling (0x27) → a round every `round_time` (tag notifications, or error 0x15
when empty) until the count runs out or stop (0x28); single polling (0x22).

Fault switches: `garbage(n)`, `bad_checksum()` (a tag frame with a wrong check byte),
`split` (write frames one byte at a time), `silent` (ignore requests), `hangup()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from drivers.uhf_serial import m100, r2000
from gateway.pty import PtyPair

if TYPE_CHECKING:
    from collections.abc import Coroutine


@dataclass(slots=True)
class SimTag:
    """A tag in the field: its antenna (1-based) and RSSI in dBm."""

    antenna: int
    rssi: int


@dataclass(slots=True)
class UhfSimulator:
    """The reader end of a pty; `start()`, give the driver `path`, `stop()`."""

    protocol: str  # "r2000" or "m100"
    tags: dict[str, SimTag] = field(default_factory=dict)
    connected: frozenset[int] = frozenset({1, 2, 3, 4})
    round_time: float = 0.01
    address: int = 0x01
    silent: bool = False
    split: bool = False
    requests: list[tuple[int, bytes]] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)
    rounds: int = 0
    pty: PtyPair = field(default_factory=PtyPair)
    _antenna: int = 1
    _polls_left: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def path(self) -> str:
        """The device path the driver opens."""
        return self.pty.path

    async def start(self) -> None:
        """Start answering requests."""
        self._spawn(self._serve(), "uhf-sim:serve")
        self._spawn(self._poller(), "uhf-sim:poller")

    async def stop(self) -> None:
        """Stop, and close the pty."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        self.pty.hangup()

    def hangup(self) -> None:
        """The reader is unplugged: the driver's next read fails."""
        self.pty.hangup()

    async def wait_for_rounds(self, n: int, within: float = 5.0) -> None:
        """Wait until `n` inventory rounds have been answered in all."""
        async with asyncio.timeout(within):
            while self.rounds < n:
                self._changed.clear()
                await self._changed.wait()

    async def garbage(self, n: int = 40) -> None:
        """Write bytes that are no frame."""
        await self.pty.write(random.randbytes(n))

    async def bad_checksum(self) -> None:
        """A tag frame with a wrong check byte (the parser must drop it and go on)."""
        frame = bytearray(self._tag_frames(next(iter(self.tags.items()), None))[0])
        frame[-2 if self.protocol == "m100" else -1] ^= 0x5A
        await self.pty.write(bytes(frame))

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, frames: list[bytes]) -> None:
        data = b"".join(frames)
        if self.split:
            for i in range(len(data)):
                await self.pty.write(data[i : i + 1])
        else:
            await self.pty.write(data)

    async def _serve(self) -> None:
        buf = bytearray()
        while True:
            chunk = await self.pty.read()
            if not chunk:
                return
            buf += chunk
            self.raw += chunk
            for cmd, data in self._requests(buf):
                self.requests.append((cmd, data))
                if not self.silent:
                    await self._answer(cmd, data)

    def _requests(self, buf: bytearray) -> list[tuple[int, bytes]]:
        """Complete request frames in `buf` (consumed), as (command, data)."""
        out: list[tuple[int, bytes]] = []
        head = r2000.HEAD if self.protocol == "r2000" else m100.HEAD
        while True:
            start = buf.find(head)
            if start < 0:
                buf.clear()
                return out
            del buf[:start]
            if self.protocol == "r2000":
                if len(buf) < 2 or len(buf) < buf[1] + 2:
                    return out
                frame = bytes(buf[: buf[1] + 2])
                del buf[: len(frame)]
                if sum(frame) & 0xFF == 0:
                    out.append((frame[3], frame[4:-1]))
            else:
                if len(buf) < 5 or len(buf) < ((buf[3] << 8) | buf[4]) + 7:
                    return out
                frame = bytes(buf[: ((buf[3] << 8) | buf[4]) + 7])
                del buf[: len(frame)]
                if frame[-1] == m100.END and m100.checksum(frame[1:-2]) == frame[-2]:
                    out.append((frame[2], frame[5:-2]))

    async def _answer(self, cmd: int, data: bytes) -> None:
        if self.protocol == "r2000":
            if cmd == r2000.CMD_SET_WORK_ANTENNA and data:
                self._antenna = data[0] + 1
                await self._write([r2000.build_frame(self.address, cmd, b"\x10")])
            elif cmd == r2000.CMD_REALTIME_INVENTORY:
                await asyncio.sleep(self.round_time)
                await self._write(self._r2000_round())
                self._round_done()
            else:
                await self._write([r2000.build_frame(self.address, cmd, b"\x11")])
        elif cmd == m100.CMD_MULTI_POLL and len(data) == 3:
            self._polls_left = (data[1] << 8) | data[2]
        elif cmd == m100.CMD_STOP_MULTI_POLL:
            self._polls_left = 0
            await self._write([m100.build_frame(cmd, b"\x00", m100.TYPE_RESPONSE)])
        elif cmd == m100.CMD_SINGLE_POLL:
            await self._write(self._m100_round())
            self._round_done()

    def _round_done(self) -> None:
        self.rounds += 1
        self._changed.set()

    def _r2000_round(self) -> list[bytes]:
        ant = self._antenna
        inv = r2000.CMD_REALTIME_INVENTORY
        if ant not in self.connected:
            return [r2000.build_frame(self.address, inv, b"\x22")]  # antenna missing
        here = [(epc, t) for epc, t in self.tags.items() if t.antenna == ant]
        if not here:
            return [r2000.build_frame(self.address, inv, b"\x36")]  # no tag
        frames = [f for item in here for f in self._tag_frames(item)]
        end = bytes([(ant - 1) & 3]) + (100).to_bytes(2, "big") + len(here).to_bytes(4, "big")
        return [*frames, r2000.build_frame(self.address, inv, end)]

    def _m100_round(self) -> list[bytes]:
        if not self.tags:
            return [m100.build_frame(m100.CMD_ERROR, b"\x15", m100.TYPE_RESPONSE)]
        return [f for item in self.tags.items() for f in self._tag_frames(item)]

    def _tag_frames(self, item: tuple[str, SimTag] | None) -> list[bytes]:
        epc, tag = item or ("3074257bf7194e4000001a85", SimTag(1, -50))
        raw_epc = bytes.fromhex(epc)
        if self.protocol == "m100":
            params = bytes([tag.rssi & 0xFF, 0x30, 0x00]) + raw_epc + b"\x12\x34"
            return [m100.build_frame(m100.CMD_MULTI_POLL, params, m100.TYPE_NOTIFICATION)]
        # FreqAnt: hop index 12 << 2 | antenna bits; 8-port readers put bit 2 in RSSI.
        freq_ant = (12 << 2) | ((tag.antenna - 1) & 3)
        rssi = ((tag.rssi + 129) & 0x7F) | (0x80 if tag.antenna > 4 else 0)
        data = bytes([freq_ant, 0x30, 0x00]) + raw_epc + bytes([rssi])
        return [r2000.build_frame(self.address, r2000.CMD_REALTIME_INVENTORY, data)]

    async def _poller(self) -> None:
        while True:
            await asyncio.sleep(self.round_time)
            if self.protocol == "m100" and self._polls_left and not self.silent:
                self._polls_left -= 1
                with contextlib.suppress(OSError):
                    await self._write(self._m100_round())
                self._round_done()
