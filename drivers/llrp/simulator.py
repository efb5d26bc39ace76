"""An LLRP reader simulator: a TCP server on 127.0.0.1 speaking the real messages.

It behaves as protocols.md §1.1 ("How to simulate LLRP in a test") describes: the
connection event first; a `*_RESPONSE` with the request's message ID and an LLRPStatus
for every request; ROSpec state (Disabled → Inactive/Active) with duplicate IDs refused
as M_FieldError/A_Invalid; RO_ACCESS_REPORTs every `cycle` while a ROSpec is active,
grouped N tags a report as its ROReportSpec asks; KEEPALIVEs per the KeepaliveSpec; a
second client refused with status 2. The tags are a `TagPopulation` of SGTIN-96 items
that move between antennas and leave through sales.

Fault switches: `inject_garbage()`, `send_truncated_report()` (a report whose body is
cut: the framing stays intact), `truncate_and_close()` (half a message, then EOF),
`disconnect()`, and `silent` (say nothing at all, socket open).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from drivers.llrp.params import (
    CONNECTION_ATTEMPT_EVENT,
    FIELD_ERROR,
    KEEPALIVE_SPEC,
    LLRP_STATUS,
    READER_EVENT_NOTIFICATION_DATA,
    RO_BOUNDARY_SPEC,
    RO_REPORT_SPEC,
    ROSPEC,
    ROSPEC_START_TRIGGER,
    UTC_TIMESTAMP,
    iter_tlv,
    tlv,
)
from drivers.llrp.protocol import Message, MessageReader, MessageType, encode_message
from drivers.llrp.report import TAG_REPORT_DATA
from gateway.epc import encode_sgtin96

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Sequence

_TAG = struct.Struct(">HHB12sBHBbBQBH")


@dataclass(slots=True)
class SimTag:
    """One tagged item: its EPC (hex), GTIN, antenna and mean RSSI there."""

    epc: str
    gtin: str
    antenna: int
    rssi: int
    seen: int = 0


@dataclass(slots=True)
class TagPopulation:
    """SGTIN-96 items on antennas; each `step()` is one inventory round."""

    antennas: int = 4
    move_rate: float = 0.0
    sale_rate: float = 0.0
    miss_rate: float = 0.0
    seed: int = 1
    tags: list[SimTag] = field(default_factory=list)
    sold: list[SimTag] = field(default_factory=list)
    _rng: random.Random = field(init=False)
    _serial: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def stock(self, gtin: str, count: int, antenna: int | None = None, cp_digits: int = 7) -> None:
        """Put `count` new items of `gtin` on `antenna` (random antennas if None)."""
        for _ in range(count):
            self._serial += 1
            ant = antenna or self._rng.randint(1, self.antennas)
            epc = encode_sgtin96(gtin, self._serial, company_prefix_digits=cp_digits)
            self.tags.append(SimTag(epc, gtin, ant, self._rng.randint(-70, -40)))

    def step(self) -> list[SimTag]:
        """Move and sell some items, then return the ones read this round (some missed)."""
        rng = self._rng
        kept: list[SimTag] = []
        for tag in self.tags:
            if rng.random() < self.sale_rate:
                self.sold.append(tag)  # leaves the store through the till
                continue
            if rng.random() < self.move_rate:
                tag.antenna = rng.randint(1, self.antennas)
            kept.append(tag)
        self.tags = kept
        read = [t for t in kept if rng.random() >= self.miss_rate]
        for tag in read:
            tag.seen += 1
        return read


@dataclass(slots=True)
class _ROSpec:
    start: int  # ROSpecStartTrigger type: 0 Null, 1 Immediate
    every: int  # N tags per report (0 = all)
    state: str = "disabled"


def status(code: int = 0, text: str = "", field_error: tuple[int, int] | None = None) -> bytes:
    """An LLRPStatus parameter, optionally with a FieldError."""
    raw = text.encode()
    value = struct.pack(">HH", code, len(raw)) + raw
    if field_error is not None:
        value += tlv(FIELD_ERROR, struct.pack(">HH", *field_error))
    return tlv(LLRP_STATUS, value)


def connection_event(status_code: int = 0, ts_us: int | None = None) -> bytes:
    """READER_EVENT_NOTIFICATION body: UTCTimestamp + ConnectionAttemptEvent (§1.1)."""
    us = int(time.time() * 1e6) if ts_us is None else ts_us
    data = tlv(UTC_TIMESTAMP, struct.pack(">Q", us)) + tlv(
        CONNECTION_ATTEMPT_EVENT, struct.pack(">H", status_code)
    )
    return tlv(READER_EVENT_NOTIFICATION_DATA, data)


def report_body(tags: Sequence[tuple[str, int, int]], ts_us: int) -> bytes:
    """RO_ACCESS_REPORT body for (EPC hex, antenna, RSSI) reads in our ROSpec's layout:
    EPC-96, AntennaID, PeakRSSI, FirstSeenTimestampUTC, TagSeenCount (spec §16.2.7.3)."""
    out = bytearray()
    for epc, antenna, rssi in tags:
        out += _TAG.pack(TAG_REPORT_DATA, 34, 0x8D, bytes.fromhex(epc), 0x81, antenna, 0x86,
                         rssi, 0x82, ts_us, 0x88, 1)  # fmt: skip
    return bytes(out)


class LLRPSimulator:
    """The reader: `await start()`, point the driver at `port`, `await stop()`."""

    def __init__(
        self,
        population: TagPopulation,
        *,
        cycle: float = 0.1,
        rssi_jitter: int = 3,
        refuse_start_when_active: bool = True,
    ) -> None:
        self.population = population
        self.cycle = cycle
        self.rssi_jitter = rssi_jitter
        self.refuse_start_when_active = refuse_start_when_active
        self.silent = False
        self.port = 0
        self.connections = 0
        self.refused = 0
        self.keepalive_acks = 0
        self.keepalives_sent = 0
        self.reports_sent = 0
        self.received: list[Message] = []
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._rospecs: dict[int, _ROSpec] = {}
        self._keepalive_ms = 0
        self._next_id = 1000
        self._changed = asyncio.Event()

    async def start(self) -> None:
        """Listen on 127.0.0.1, on a free port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the server, the connection and every task."""
        if self._server is not None:
            self._server.close()
        self.disconnect()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        if self._server is not None:
            await self._server.wait_closed()

    async def wait_for(self, check: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until `check()` holds (re-checked on every change), or raise TimeoutError."""
        async with asyncio.timeout(within):
            while not check():
                self._changed.clear()
                await self._changed.wait()

    def requests(self, kind: MessageType) -> list[Message]:
        """Every message of `kind` received so far."""
        return [m for m in self.received if m.type == kind]

    # Fault switches -----------------------------------------------------------------

    def inject_garbage(self, n: int = 64) -> None:
        """Write bytes that are not LLRP (the client must drop the connection)."""
        self._write(b"\xff" * 2 + random.randbytes(n))

    def send_truncated_report(self) -> None:
        """An RO_ACCESS_REPORT whose TagReportData overruns the body (framing intact)."""
        body = struct.pack(">HH", TAG_REPORT_DATA, 34) + b"\x8d" + b"\x00" * 10
        self._write(encode_message(MessageType.RO_ACCESS_REPORT, self._id(), body))

    def truncate_and_close(self) -> None:
        """Half of a report, then close the connection."""
        tags = [(t.epc, t.antenna, t.rssi) for t in self.population.tags[:2]]
        frame = encode_message(MessageType.RO_ACCESS_REPORT, self._id(), report_body(tags, 0))
        self._write(frame[: len(frame) // 2])
        self.disconnect()

    def disconnect(self) -> None:
        """Drop the client's connection (the reader went away)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self._notify()

    # Connection handling ------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _write(self, data: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None and not self._writer.is_closing():
            # One client at a time (§1.1): status 2, "client-initiated connection exists".
            writer.write(encode_message(MessageType.READER_EVENT_NOTIFICATION, 0,
                                        connection_event(2)))  # fmt: skip
            writer.close()
            self.refused += 1
            self._notify()
            return
        self._writer = writer
        self.connections += 1
        self._rospecs.clear()
        self._keepalive_ms = 0
        writer.write(encode_message(MessageType.READER_EVENT_NOTIFICATION, 0, connection_event()))
        self._notify()
        self._spawn(self._report_loop(writer), "llrp-sim:reports")
        self._spawn(self._keepalive_loop(writer), "llrp-sim:keepalive")
        framer = MessageReader(versions=frozenset(range(8)))
        try:
            while not writer.is_closing():
                data = await reader.read(65536)
                if not data:
                    break
                for msg in framer.feed(data):
                    self.received.append(msg)
                    self._answer(msg)
                    self._notify()
        except (OSError, ValueError):
            pass
        finally:
            if self._writer is writer:
                self._writer = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self._notify()

    def _reply(self, msg: Message, kind: int, body: bytes) -> None:
        if not self.silent:
            self._write(encode_message(kind, msg.id, body))

    def _answer(self, msg: Message) -> None:
        t = msg.type
        ok = status()
        if t == MessageType.KEEPALIVE_ACK:
            self.keepalive_acks += 1
        elif t in (MessageType.ENABLE_EVENTS_AND_REPORTS, MessageType.GET_REPORT):
            pass
        elif t == MessageType.CLOSE_CONNECTION:
            self._reply(msg, MessageType.CLOSE_CONNECTION_RESPONSE, ok)
            self.disconnect()
        elif t == MessageType.SET_READER_CONFIG:
            for ptype, start, _end in iter_tlv(msg.body, 1, len(msg.body)):
                if ptype == KEEPALIVE_SPEC:
                    trigger, interval = struct.unpack_from(">BI", msg.body, start)
                    self._keepalive_ms = interval if trigger == 1 else 0
            self._reply(msg, t + 10, ok)
        elif t == MessageType.ADD_ROSPEC:
            self._reply(msg, t + 10, self._add_rospec(msg.body))
        elif t in (
            MessageType.DELETE_ROSPEC,
            MessageType.ENABLE_ROSPEC,
            MessageType.START_ROSPEC,
            MessageType.STOP_ROSPEC,
            MessageType.DISABLE_ROSPEC,
        ):
            self._reply(msg, t + 10, self._rospec_op(t, struct.unpack_from(">I", msg.body)[0]))
        elif t in (MessageType.DELETE_ACCESSSPEC, MessageType.GET_READER_CAPABILITIES):
            self._reply(msg, t + 10, ok)
        else:
            self._reply(msg, MessageType.ERROR_MESSAGE, status(109, "unsupported message"))

    def _add_rospec(self, body: bytes) -> bytes:
        for ptype, start, end in iter_tlv(body, 0, len(body)):
            if ptype != ROSPEC:
                continue
            (rospec_id,) = struct.unpack_from(">I", body, start)
            if rospec_id in self._rospecs:
                return status(101, "ROSpec ID already in use", (0, 300))
            spec = _ROSpec(start=0, every=0)
            for sub, s_start, s_end in iter_tlv(body, start + 6, end):
                if sub == RO_BOUNDARY_SPEC:
                    for trig, t_start, _ in iter_tlv(body, s_start, s_end):
                        if trig == ROSPEC_START_TRIGGER:
                            spec.start = body[t_start]
                elif sub == RO_REPORT_SPEC:
                    spec.every = struct.unpack_from(">H", body, s_start + 1)[0]
            self._rospecs[rospec_id] = spec
            return status()
        return status(103, "no ROSpec")

    def _rospec_op(self, kind: int, rospec_id: int) -> bytes:
        if kind == MessageType.DELETE_ROSPEC and rospec_id == 0:
            self._rospecs.clear()
            return status()
        spec = self._rospecs.get(rospec_id)
        if spec is None:
            return status(101, "no such ROSpec", (0, 300))
        if kind == MessageType.DELETE_ROSPEC:
            del self._rospecs[rospec_id]
        elif kind == MessageType.ENABLE_ROSPEC:
            spec.state = "active" if spec.start == 1 else "inactive"
        elif kind == MessageType.START_ROSPEC:
            if spec.state == "active" and self.refuse_start_when_active:
                return status(101, "ROSpec already active", (0, 300))
            spec.state = "active"
        elif kind == MessageType.STOP_ROSPEC:
            spec.state = "inactive"
        else:
            spec.state = "disabled"
        return status()

    async def _report_loop(self, writer: asyncio.StreamWriter) -> None:
        rng = random.Random(self.population.seed)
        while not writer.is_closing():
            await asyncio.sleep(self.cycle)
            active = [s for s in self._rospecs.values() if s.state == "active"]
            if not active or self.silent:
                continue
            j = self.rssi_jitter
            tags = [
                (t.epc, t.antenna, max(-128, min(-1, t.rssi + rng.randint(-j, j))))
                for t in self.population.step()
            ]
            every = active[0].every or max(1, len(tags))
            ts_us = int(time.time() * 1e6)
            for i in range(0, len(tags), every):
                body = report_body(tags[i : i + every], ts_us)
                self._write(encode_message(MessageType.RO_ACCESS_REPORT, self._id(), body))
                self.reports_sent += 1
            with contextlib.suppress(OSError):
                await writer.drain()
            self._notify()

    async def _keepalive_loop(self, writer: asyncio.StreamWriter) -> None:
        while not writer.is_closing():
            interval = self._keepalive_ms / 1000 if self._keepalive_ms else 0.05
            await asyncio.sleep(interval)
            if self._keepalive_ms and not self.silent:
                self._write(encode_message(MessageType.KEEPALIVE, self._id()))
                self.keepalives_sent += 1
                self._notify()
