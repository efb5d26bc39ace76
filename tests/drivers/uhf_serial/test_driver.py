"""The serial UHF driver against the simulator on a pty pair, for both protocol families."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import pytest

from drivers.uhf_serial import m100, r2000
from drivers.uhf_serial.config import UhfSerialConfig
from drivers.uhf_serial.driver import UhfSerial
from drivers.uhf_serial.simulator import SimTag, UhfSimulator
from gateway.driver import Clock, DeviceState, DriverContext
from gateway.epc import encode_sgtin96
from gateway.events import Event, TagRead
from gateway.health import Health, HealthState

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

GTIN = "80614141123458"


def epc(serial: int) -> str:
    return encode_sgtin96(GTIN, serial, company_prefix_digits=7)


class Run:
    """The driver as a task with a real context."""

    def __init__(self, cfg: UhfSerialConfig) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=10_000)
        log = logging.LoggerAdapter(logging.getLogger("test.uhf"), {})
        self.health = Health(log)
        ctx = DriverContext(cfg.id, log, Clock(), self.health, DeviceState(), self.queue)
        self.task = asyncio.create_task(UhfSerial(cfg).run(ctx), name="driver:test")

    async def reads_until(self, wanted: set[tuple[str, int]], within: float = 5.0) -> list[TagRead]:
        """Reads until every (epc, antenna) in `wanted` was seen."""
        out: list[TagRead] = []
        async with asyncio.timeout(within):
            while not wanted <= {(r.epc, r.antenna) for r in out}:
                event = await self.queue.get()
                assert isinstance(event, TagRead)
                out.append(event)
        return out

    async def stop(self) -> None:
        if self.task.done():
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def config(sim: UhfSimulator, **kw: Any) -> UhfSerialConfig:
    return UhfSerialConfig.model_validate(
        {"id": "uhf-1", "driver": "uhf_serial", "protocol": sim.protocol, "port": sim.path, **kw}
    )


@pytest.fixture
async def make_sim() -> AsyncIterator[Callable[..., UhfSimulator]]:
    made: list[UhfSimulator] = []

    def make(protocol: str, **kw: Any) -> UhfSimulator:
        made.append(UhfSimulator(protocol, **kw))
        return made[-1]

    yield make
    for s in made:
        await s.stop()


@pytest.fixture
async def run_driver() -> AsyncIterator[Callable[[UhfSerialConfig], Run]]:
    runs: list[Run] = []

    def start(cfg: UhfSerialConfig) -> Run:
        runs.append(Run(cfg))
        return runs[-1]

    yield start
    for r in runs:
        await r.stop()


async def test_r2000_reads_tags_on_each_antenna(
    make_sim: Callable[..., UhfSimulator], run_driver: Callable[[UhfSerialConfig], Run]
) -> None:
    tags = {epc(1): SimTag(1, -50), epc(2): SimTag(2, -60), epc(3): SimTag(2, -70)}
    sim = make_sim("r2000", tags=tags)
    await sim.start()
    run = run_driver(config(sim, antennas=[1, 2], address=1))
    reads = await run.reads_until({(e, t.antenna) for e, t in tags.items()})
    by_epc = {r.epc: r for r in reads}
    assert by_epc[epc(1)].rssi == -50
    assert by_epc[epc(3)].rssi == -70
    # Work antenna (0-based on the wire) before each round, then 0x89: protocols.md §1.3's
    # worked frames "set work antenna 0" and "real-time inventory, repeat 0xFF".
    assert bytes.fromhex("A0 04 01 74 00 E7 A0 04 01 89 FF D3") in sim.raw
    assert (r2000.CMD_SET_WORK_ANTENNA, b"\x01") in sim.requests
    await sim.wait_for_rounds(6)
    assert run.health.state is HealthState.OK


async def test_r2000_missing_antenna_degrades_without_stopping(
    make_sim: Callable[..., UhfSimulator], run_driver: Callable[[UhfSerialConfig], Run]
) -> None:
    sim = make_sim("r2000", tags={epc(1): SimTag(1, -50)}, connected=frozenset({1}))
    await sim.start()
    run = run_driver(config(sim, antennas=[1, 3]))
    await run.reads_until({(epc(1), 1)})
    await sim.wait_for_rounds(4)
    assert run.health.state is HealthState.DEGRADED
    assert run.health.reason == "antenna 3: antenna missing"
    await run.reads_until({(epc(1), 1)})


async def test_r2000_resynchronises_after_garbage_bad_checksum_and_split_frames(
    make_sim: Callable[..., UhfSimulator], run_driver: Callable[[UhfSerialConfig], Run]
) -> None:
    sim = make_sim("r2000", tags={epc(1): SimTag(1, -50)}, split=True)
    await sim.start()
    run = run_driver(config(sim))
    await run.reads_until({(epc(1), 1)})
    await sim.garbage(50)
    await sim.bad_checksum()
    sim.tags[epc(2)] = SimTag(1, -55)
    await run.reads_until({(epc(2), 1)})
    assert run.health.counters["bad_frames"] + run.health.counters["garbage_bytes"] > 0


async def test_r2000_silent_reader_raises_for_the_supervisor(
    make_sim: Callable[..., UhfSimulator], run_driver: Callable[[UhfSerialConfig], Run]
) -> None:
    sim = make_sim("r2000", tags={epc(1): SimTag(1, -50)})
    await sim.start()
    run = run_driver(config(sim, timeout="100ms", max_missed=2))
    await run.reads_until({(epc(1), 1)})
    sim.silent = True
    with pytest.raises(TimeoutError, match="no answer to 2 inventory rounds"):
        async with asyncio.timeout(5):
            await run.task


async def test_m100_multiple_polling_and_restart_when_the_count_runs_out(
    make_sim: Callable[..., UhfSimulator], run_driver: Callable[[UhfSerialConfig], Run]
) -> None:
    sim = make_sim("m100", tags={epc(7): SimTag(1, -55)})
    await sim.start()
    run = run_driver(config(sim, poll_count=3, timeout="100ms"))
    reads = await run.reads_until({(epc(7), 1)})
    assert reads[0].rssi == -55
    polls = [d for c, d in sim.requests if c == m100.CMD_MULTI_POLL]
    assert polls[0] == b"\x22\x00\x03"
    # Three rounds, then the module falls quiet; the driver polls again by itself.
    await sim.wait_for_rounds(7)
    assert len([c for c, _ in sim.requests if c == m100.CMD_MULTI_POLL]) >= 2
    assert run.health.counters["poll_restarts"] >= 1
    assert run.health.state is HealthState.OK


async def test_m100_empty_field_is_routine(
    make_sim: Callable[..., UhfSimulator], run_driver: Callable[[UhfSerialConfig], Run]
) -> None:
    sim = make_sim("m100")
    await sim.start()
    run = run_driver(config(sim))
    await sim.wait_for_rounds(4)
    # The first bytes are protocols.md §1.4's worked "multiple poll, 10000 rounds".
    assert sim.raw.startswith(bytes.fromhex("BB 00 27 00 03 22 27 10 83 7E"))
    assert run.health.state is HealthState.OK
    assert run.queue.empty()
    assert "reader_errors" not in run.health.counters


async def test_unplugged_reader_raises(
    make_sim: Callable[..., UhfSimulator], run_driver: Callable[[UhfSerialConfig], Run]
) -> None:
    sim = make_sim("m100", tags={epc(1): SimTag(1, -50)})
    await sim.start()
    run = run_driver(config(sim))
    await run.reads_until({(epc(1), 1)})
    sim.hangup()
    with pytest.raises(OSError):  # serial errors vary: EIO, "returned no data"
        async with asyncio.timeout(5):
            await run.task
