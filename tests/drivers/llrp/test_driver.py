"""The LLRP client against golden bytes (a scripted peer) and against the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Self

import pytest

from drivers.llrp import driver as llrp_driver
from drivers.llrp.config import LlrpConfig
from drivers.llrp.driver import LlrpDriver, LLRPRejectedError
from drivers.llrp.protocol import MessageReader, MessageType, encode_message
from drivers.llrp.simulator import LLRPSimulator, TagPopulation, status
from gateway.driver import Clock, DeviceState, DriverContext
from gateway.epc import Sgtin96, decode_epc
from gateway.events import Event, TagRead
from gateway.health import Health, HealthState

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable


def h(text: str) -> bytes:
    return bytes.fromhex(" ".join(text.split()))


def with_id(frame: bytes, msg_id: int) -> bytes:
    """A golden message with another message ID (bytes 6-9 of the header)."""
    return frame[:6] + msg_id.to_bytes(4, "big") + frame[10:]


# Worked bytes from protocols.md §1.1, cross-checked there against sllurp's decoder.
REN_CONNECTED = h(
    "04 3F 00 00 00 20 00 00 00 00 00 F6 00 16 00 80 00 0C 00 06 0A 24 18 1E 40 00"
    " 01 00 00 06 00 00"
)
ADD_ROSPEC = h("""04 14 00 00 00 4B 00 00 00 02
    00 B1 00 41 00 00 00 01 00 00
    00 B2 00 12 00 B3 00 05 01 00 B6 00 09 00 00 00 00 00
    00 B7 00 18 00 01 00 00 00 B8 00 09 00 00 00 00 00 00 BA 00 07 00 01 01
    00 ED 00 0D 02 00 01 00 EE 00 06 16 80""")
ENABLE_ROSPEC = h("04 18 00 00 00 0E 00 00 00 03 00 00 00 01")
START_ROSPEC = h("04 16 00 00 00 0E 00 00 00 04 00 00 00 01")
ENABLE_ROSPEC_RESPONSE = h("04 22 00 00 00 12 00 00 00 03 01 1F 00 08 00 00 00 00")
RO_ACCESS_REPORT = h("""04 3D 00 00 00 2C 00 00 12 34 00 F0 00 22
    8D E2 00 30 98 88 19 00 72 21 40 36 9E 81 00 01 86 CC
    82 00 06 0A 24 18 1E 40 00 88 00 03""")
KEEPALIVE = h("04 3E 00 00 00 0A 00 00 00 07")
KEEPALIVE_ACK = h("04 48 00 00 00 0A 00 00 00 07")
GTINS = ("80614141123458", "04012345123456")


class Run:
    """The driver running as a task with a real context; reads come out of `queue`."""

    def __init__(self, cfg: LlrpConfig) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=10_000)
        log = logging.LoggerAdapter(logging.getLogger("test.llrp"), {})
        self.health = Health(log)
        ctx = DriverContext(cfg.id, log, Clock(), self.health, DeviceState(), self.queue)
        self.task = asyncio.create_task(LlrpDriver(cfg).run(ctx), name="driver:test")

    async def reads(self, n: int, within: float = 5.0) -> list[TagRead]:
        out: list[TagRead] = []
        async with asyncio.timeout(within):
            while len(out) < n:
                event = await self.queue.get()
                assert isinstance(event, TagRead)
                out.append(event)
        return out

    async def epcs(self, wanted: set[str], within: float = 5.0) -> None:
        seen: set[str] = set()
        async with asyncio.timeout(within):
            while not wanted <= seen:
                event = await self.queue.get()
                assert isinstance(event, TagRead)
                seen.add(event.epc)

    async def stop(self) -> None:
        if self.task.done():
            return  # a test awaited it and checked its outcome
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def config(port: int, **kw: Any) -> LlrpConfig:
    return LlrpConfig.model_validate(
        {"id": "rfid-1", "driver": "llrp", "host": "127.0.0.1", "port": port, **kw}
    )


@pytest.fixture(autouse=True)
def _fast_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llrp_driver, "RECONNECT_INITIAL", 0.02)
    monkeypatch.setattr(llrp_driver, "RECONNECT_MAX", 0.1)


@pytest.fixture
async def sim() -> AsyncIterator[LLRPSimulator]:
    population = TagPopulation(antennas=2)
    for gtin in GTINS:
        population.stock(gtin, 5)
    simulator = LLRPSimulator(population, cycle=0.02)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def run_driver() -> AsyncIterator[Callable[[LlrpConfig], Run]]:
    runs: list[Run] = []

    def start(cfg: LlrpConfig) -> Run:
        runs.append(Run(cfg))
        return runs[-1]

    yield start
    for r in runs:
        await r.stop()


# Golden bytes: a scripted peer -------------------------------------------------------


class Peer:
    """A scripted reader: golden bytes out, the driver's bytes recorded."""

    def __init__(self, refuse: MessageType | None = None) -> None:
        self.refuse = refuse
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.before_event = b""
        self.go = asyncio.Event()
        self.writer: asyncio.StreamWriter | None = None
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        if self.writer is not None:
            self.writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        # The client must stay quiet until the connection event (spec §18.1).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.2):
                self.before_event = await reader.read(100)
        writer.write(REN_CONNECTED)
        framer = MessageReader()
        while data := await reader.read(65536):
            for msg in framer.feed(data):
                frame = encode_message(msg.type, msg.id, msg.body)
                self.received.put_nowait(frame)
                if msg.type == MessageType.ENABLE_ROSPEC:
                    writer.write(with_id(ENABLE_ROSPEC_RESPONSE, msg.id))
                elif msg.type == self.refuse:
                    refusal = status(101, "dup", (0, 300))
                    writer.write(encode_message(msg.type + 10, msg.id, refusal))
                elif msg.type != MessageType.KEEPALIVE_ACK:
                    writer.write(encode_message(msg.type + 10, msg.id, status()))

    async def next(self) -> bytes:
        async with asyncio.timeout(5):
            return await self.received.get()


async def test_golden_connect_configure_report_keepalive(
    run_driver: Callable[[LlrpConfig], Run],
) -> None:
    async with Peer() as peer:
        run = run_driver(config(peer.port, keepalive="1s"))
        sent = [await peer.next() for _ in range(6)]
        assert peer.before_event == b""
        types = [int.from_bytes(m[:2], "big") & 0x3FF for m in sent]
        assert types == [3, 41, 21, 20, 24, 22]
        # SET_READER_CONFIG: no factory reset, KeepaliveSpec periodic 1000 ms inside.
        assert sent[0][10] == 0x00
        assert h("00 DC 00 09 01 00 00 03 E8") in sent[0]
        assert sent[1] == h("04 29 00 00 00 0E 00 00 00 02 00 00 00 00")  # DELETE_ACCESSSPEC(0)
        assert sent[2] == h("04 15 00 00 00 0E 00 00 00 03 00 00 00 00")  # DELETE_ROSPEC(0)
        assert sent[3] == with_id(ADD_ROSPEC, 4)
        assert sent[4] == with_id(ENABLE_ROSPEC, 5)
        assert sent[5] == with_id(START_ROSPEC, 6)

        assert peer.writer is not None
        peer.writer.write(RO_ACCESS_REPORT)
        (read,) = await run.reads(1)
        assert (read.device, read.epc, read.antenna, read.rssi, read.seen_count) == (
            "rfid-1",
            "e2003098881900722140369e",
            1,
            -52,
            3,
        )
        peer.writer.write(KEEPALIVE)
        assert await peer.next() == KEEPALIVE_ACK
        assert run.health.state is HealthState.OK


async def test_refused_configuration_raises_to_the_supervisor(
    run_driver: Callable[[LlrpConfig], Run],
) -> None:
    async with Peer(refuse=MessageType.ADD_ROSPEC) as peer:
        run = run_driver(config(peer.port))
        with pytest.raises(LLRPRejectedError, match=r"ADD_ROSPEC: M_FieldError \(101\): 'dup'"):
            async with asyncio.timeout(5):
                await run.task


# Against the simulator ---------------------------------------------------------------


async def test_reads_every_tag_and_acknowledges_keepalives(
    sim: LLRPSimulator, run_driver: Callable[[LlrpConfig], Run]
) -> None:
    run = run_driver(config(sim.port, keepalive="100ms", zones={1: "a"}))
    await run.epcs({t.epc for t in sim.population.tags})
    await sim.wait_for(lambda: sim.keepalive_acks >= 2)
    reads = await run.reads(20)
    for r in reads:
        decoded = decode_epc(r.epc)
        assert isinstance(decoded, Sgtin96)
        assert decoded.gtin in GTINS
        assert r.antenna in (1, 2)
        assert r.rssi is not None and -128 <= r.rssi < 0
    assert run.health.state is HealthState.OK
    assert run.health.counters["tag_reports"] >= 30
    assert sim.connections == 1


async def test_reader_disconnect_reconnects_and_reconfigures(
    sim: LLRPSimulator, run_driver: Callable[[LlrpConfig], Run]
) -> None:
    run = run_driver(config(sim.port))
    await run.reads(5)
    sim.disconnect()
    await sim.wait_for(lambda: len(sim.requests(MessageType.ADD_ROSPEC)) == 2)
    assert sim.connections == 2
    # A clean slate again on the new connection: DELETE_ROSPEC(0) before ADD_ROSPEC.
    assert len(sim.requests(MessageType.DELETE_ROSPEC)) >= 2
    while not run.queue.empty():
        run.queue.get_nowait()
    await run.reads(10)
    assert run.health.counters["reconnects"] == 1
    assert run.health.state is HealthState.OK


@pytest.mark.parametrize("fault", ["garbage", "truncate_and_close"])
async def test_broken_stream_reconnects(
    sim: LLRPSimulator, run_driver: Callable[[LlrpConfig], Run], fault: str
) -> None:
    run = run_driver(config(sim.port))
    await run.reads(5)
    getattr(sim, fault if fault != "garbage" else "inject_garbage")()
    await sim.wait_for(lambda: sim.connections == 2)
    await sim.wait_for(lambda: run.health.state is HealthState.OK)
    await run.reads(5)
    assert run.health.counters["reconnects"] >= 1


async def test_truncated_report_is_counted_and_the_connection_kept(
    sim: LLRPSimulator, run_driver: Callable[[LlrpConfig], Run]
) -> None:
    run = run_driver(config(sim.port))
    await run.reads(3)
    sim.send_truncated_report()
    await sim.wait_for(lambda: run.health.counters.get("decode_errors") == 1)
    await run.reads(10)
    assert sim.connections == 1


async def test_silent_reader_is_noticed_by_missed_keepalives(
    sim: LLRPSimulator, run_driver: Callable[[LlrpConfig], Run]
) -> None:
    run = run_driver(config(sim.port, keepalive="100ms", request_timeout="300ms"))
    await run.reads(3)
    sim.silent = True
    await sim.wait_for(lambda: sim.connections >= 2)
    assert run.health.state is HealthState.DEGRADED
    assert "keepalive missed" in (run.health.reason or "")
    sim.silent = False
    await sim.wait_for(lambda: run.health.state is HealthState.OK)
    await run.reads(5)


async def test_busy_reader_refuses_then_accepts(
    sim: LLRPSimulator, run_driver: Callable[[LlrpConfig], Run]
) -> None:
    other_reader, other = await asyncio.open_connection("127.0.0.1", sim.port)
    await sim.wait_for(lambda: sim.connections == 1)
    run = run_driver(config(sim.port))
    await sim.wait_for(lambda: sim.refused >= 1)
    await sim.wait_for(lambda: run.health.state is HealthState.DEGRADED)
    assert "client-initiated connection already exists" in (run.health.reason or "")
    other.close()
    await other.wait_closed()
    del other_reader
    await run.reads(5)
    assert run.health.state is HealthState.OK
