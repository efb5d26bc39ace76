"""A DL/T 645-2007 meter simulator on a pseudo-terminal: several meters on one "bus".

It answers as the standard says (protocols.md §3.2): a normal read reply (0x91) with the
DI and its BCD value, an abnormal reply (0xD1, error bit 1 "no requested data") for a DI
it does not have, the wildcard read-address (AA…AA) from every meter at once — which on
a real bus collides unless exactly one meter is connected — and nothing to a broadcast.
Replies carry the FE wake-up preamble, as many meters send it.

Fault switches per meter (`Faults`): stop answering, answer slowly, corrupt the
checksum, answer every read with an abnormal reply. `unplug()` closes the pty (the
gateway's port dies as when a USB adapter is pulled); `replug()` makes a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import tty
from collections import Counter
from dataclasses import dataclass, field

from drivers.dlt645.identifiers import BY_NAME, IDENTIFIERS
from drivers.dlt645.parser import FrameParser
from drivers.dlt645.protocol import (
    WILDCARD_ADDRESS,
    Frame,
    Function,
    address_reply,
    data_reply,
    encode_frame,
    error_reply,
)

NO_REQUESTED_DATA = 0x02  # abnormal-reply error bit 1 (§3.2)
_TYPICAL = {
    "import_active_energy": 1234.56,
    "combined_active_energy": 1234.56,
    "voltage_a": 220.1,
    "voltage_b": 219.8,
    "voltage_c": 221.0,
    "current_a": 1.234,
    "current_b": 1.1,
    "current_c": 0.9,
    "active_power": 0.2716,
    "active_power_a": 0.2716,
    "power_factor": 0.985,
    "power_factor_a": 0.985,
    "frequency": 50.01,
}


@dataclass(slots=True)
class Faults:
    """Fault switches of one simulated meter; change them while it runs."""

    silent: bool = False
    delay: float = 0.0
    corrupt_checksum: bool = False
    error_code: int | None = None


@dataclass(slots=True)
class SimulatedMeter:
    """One meter: its address and values by DI; energy grows with the power drawn."""

    address: str
    values: dict[int, float] = field(
        default_factory=lambda: {BY_NAME[n].di: v for n, v in _TYPICAL.items()}
    )
    faults: Faults = field(default_factory=Faults)
    _last: float = field(default_factory=time.monotonic)

    def read(self, di: int) -> bytes | None:
        """The value bytes of `di`, or None when this meter does not have it."""
        entry = IDENTIFIERS.get(di)
        if entry is None or di not in self.values:
            return None
        now = time.monotonic()
        if entry.counter:
            power = self.values.get(BY_NAME["active_power"].di, 0.0)
            self.values[di] += abs(power) * (now - self._last) / 3600
        self._last = now
        return entry.encode(self.values[di])


class Dlt645Simulator:
    """Meters on one pseudo-terminal; `start()` returns the path the gateway opens."""

    def __init__(self, meters: list[SimulatedMeter]) -> None:
        self.meters = {meter.address: meter for meter in meters}
        self.requests: Counter[str] = Counter()
        """Requests received, per addressed meter (or the wildcard)."""
        self._fds: tuple[int, int] | None = None
        self._parser = FrameParser()
        self._pending: set[asyncio.TimerHandle] = set()
        self.path = ""

    async def start(self) -> str:
        """Open a new pty and serve on it; returns the device path (the "adapter")."""
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing: bytes as on a wire
        os.set_blocking(master, False)
        self._fds = (master, slave)
        self._parser = FrameParser()
        asyncio.get_running_loop().add_reader(master, self._readable)
        self.path = os.ttyname(slave)
        return self.path

    def unplug(self) -> None:
        """Close the pty: the gateway's port fails as when the adapter is pulled."""
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        if self._fds is not None:
            master, slave = self._fds
            self._fds = None
            asyncio.get_running_loop().remove_reader(master)
            os.close(master)
            os.close(slave)

    async def replug(self) -> str:
        """A new pty, as the adapter appearing again (usually under a new tty name)."""
        self.unplug()
        return await self.start()

    async def stop(self) -> None:
        """Stop serving."""
        self.unplug()

    def _readable(self) -> None:
        if self._fds is None:
            return
        try:
            data = os.read(self._fds[0], 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # EIO: the gateway closed its end; it may open it again
        for frame in self._parser.feed(data):
            self._answer(frame)

    def _answer(self, request: Frame) -> None:
        if request.is_reply:
            return
        if request.address == WILDCARD_ADDRESS and request.function == Function.READ_ADDRESS:
            self.requests[WILDCARD_ADDRESS] += 1
            answers = [
                encode_frame(address_reply(m.address))
                for m in self.meters.values()
                if not m.faults.silent
            ]
            if len(answers) > 1:
                # Several meters talking at once: the line carries neither frame.
                rng = random.Random(len(answers))
                answers = [bytes(rng.randrange(256) for _ in range(len(answers[0])))]
            for answer in answers:
                self._send(answer, 0.0)
            return
        meter = self.meters.get(request.address)
        self.requests[request.address] += 1
        if meter is None or meter.faults.silent or request.function != Function.READ_DATA:
            return  # not ours, switched off, or a function this simulator does not serve
        faults = meter.faults
        reply: Frame
        if faults.error_code is not None:
            reply = error_reply(meter.address, Function.READ_DATA, faults.error_code)
        elif len(request.data) != 4:
            reply = error_reply(meter.address, Function.READ_DATA, 0x01)
        else:
            di = int.from_bytes(request.data, "little")
            value = meter.read(di)
            if value is None:
                reply = error_reply(meter.address, Function.READ_DATA, NO_REQUESTED_DATA)
            else:
                reply = data_reply(meter.address, di, value)
        wire = encode_frame(reply)
        if faults.corrupt_checksum:
            wire = wire[:-2] + bytes([wire[-2] ^ 0xFF]) + wire[-1:]
        self._send(wire, faults.delay)

    def _send(self, data: bytes, delay: float) -> None:
        def fire() -> None:
            self._pending.discard(handle)
            if self._fds is not None:
                with contextlib.suppress(OSError):
                    os.write(self._fds[0], data)

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._pending.add(handle)
