"""The Modbus driver against pymodbus's own server (the simulator): TCP, RTU over TCP, a pty."""

from __future__ import annotations

import asyncio
import itertools
import math
import shutil
import subprocess
import time
from typing import TYPE_CHECKING, Any

import pytest

from drivers.modbus.coalesce import plan
from drivers.modbus.config import ModbusConfig
from drivers.modbus.driver import Modbus
from drivers.modbus.profiles import load_profile
from drivers.modbus.registers import ByteOrder, DataType, RegisterSpec
from drivers.modbus.simulator import ModbusSimulator
from gateway.config.links import LinkConfig
from gateway.events import Quality
from gateway.health import HealthState
from gateway.links import LinkManager
from tests.drivers.harness import running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

NUMBERS = {
    DataType.INT16: -12345,
    DataType.UINT16: 54321,
    DataType.INT32: -1_234_567_890,
    DataType.UINT32: 3_456_789_012,
    DataType.INT64: -(2**53) + 7,
    DataType.UINT64: 2**53 - 3,
    DataType.FLOAT32: 1234.5,
    DataType.FLOAT64: -98765.4321,
}


def every_type_and_order() -> list[RegisterSpec]:
    specs, address = [], 0
    for dtype in NUMBERS:
        for order in ByteOrder:
            name = f"{dtype.value}_{order.value.lower()}"
            spec = RegisterSpec(
                name=name, type="holding", address=address, data_type=dtype, byte_order=order
            )
            specs.append(spec)
            address = spec.end + 1
    specs.append(
        RegisterSpec(name="flags", type="input", address=0, data_type="bits", bit=3, width=4)
    )
    specs.append(RegisterSpec(name="relay", type="coil", address=5, data_type="bool"))
    specs.append(RegisterSpec(name="door", type="discrete", address=17, data_type="bool"))
    return specs


def device(**kw: Any) -> Modbus:
    fields = {"id": "m1", "driver": "modbus", "interval": "100ms", **kw}
    return Modbus(ModbusConfig.model_validate(fields))


@pytest.fixture
async def sdm630() -> AsyncIterator[tuple[ModbusSimulator, str]]:
    sim = ModbusSimulator.of({1: load_profile("eastron_sdm630").registers})
    port = await sim.start_tcp()
    yield sim, f"tcp://127.0.0.1:{port}"
    await sim.stop()


async def test_every_data_type_and_byte_order_round_trips() -> None:
    specs = every_type_and_order()
    sim = ModbusSimulator.of({7: specs}, changing=False)
    for spec in specs:
        if spec.data_type in NUMBERS:
            sim.units[7].set(spec.name, NUMBERS[spec.data_type])
    sim.units[7].set("flags", 0b1010)
    sim.units[7].set("relay", value=True)
    sim.units[7].set("door", value=True)
    port = await sim.start_tcp()
    registers = [s.model_dump(by_alias=True, exclude_none=True) for s in specs]
    meter = device(url=f"tcp://127.0.0.1:{port}", unit_id=7, registers=registers)
    async with running(meter, links=LinkManager()) as (run,):
        await run.until(lambda: {r.metric for r in run.readings} >= {s.name for s in specs})
    await sim.stop()
    got = {r.metric: r.value for r in run.readings}
    for spec in specs:
        if spec.data_type in NUMBERS:
            expected = float(NUMBERS[spec.data_type])
            assert got[spec.name] == pytest.approx(expected, rel=1e-7), spec.name
    assert (got["flags"], got["relay"], got["door"]) == (0b1010, 1.0, 1.0)


async def test_coalescing_sends_the_planned_number_of_requests(sdm630: Any) -> None:
    sim, url = sdm630
    expected = len(plan(load_profile("eastron_sdm630").registers, max_count=80))
    meter = device(url=url, profile="eastron_sdm630", interval="1h")
    async with running(meter, links=LinkManager()) as (run,):
        await run.until(lambda: run.health.counters.get("polls", 0) == 1)
    assert sim.requests == {(1, 4): expected}  # counted at the server
    assert expected == 5  # the README's promise for the SDM630 map
    energy = next(r for r in run.readings if r.metric == "total_active_energy")
    assert energy.counter and energy.unit == "kWh" and energy.value >= 1001.0


async def test_faults_are_counted_and_failed_polls_are_bad_readings(sdm630: Any) -> None:
    sim, url = sdm630
    unit = sim.units[1]
    meter = device(url=url, profile="eastron_sdm120", timeout="100ms", unit_id=1)
    async with running(meter, links=LinkManager()) as (run,):
        await run.until(lambda: run.health.state is HealthState.OK)
        unit.faults.exception = 2
        await run.until(lambda: run.health.state is HealthState.DEGRADED)
        assert run.health.counters["exceptions"] >= 1
        assert "illegal data address" in str(run.health.reason)
        unit.faults.exception = None
        unit.faults.silent = True
        await run.until(lambda: run.health.counters.get("timeouts", 0) >= 2)
        unit.faults.silent = False
        await run.until(lambda: run.health.state is HealthState.OK)
    bad = [r for r in run.readings if r.quality is Quality.BAD]
    assert bad and all(r.metric == "poll" and math.isnan(r.value) for r in bad)
    assert run.health.counters["failed_polls"] == len(bad)


async def test_crc_errors_are_counted_over_rtu_framing() -> None:
    sim = ModbusSimulator.of({3: load_profile("eastron_sdm120").registers})
    port = await sim.start_tcp(framing="rtu")  # RTU frames over TCP, as a serial server
    sim.units[3].faults.corrupt_crc = True
    meter = device(url=f"tcp://127.0.0.1:{port}", framing="rtu", profile="eastron_sdm120")
    meter_cfg_unit = 3
    meter.unit = meter_cfg_unit
    async with running(meter, links=LinkManager()) as (run,):
        await run.until(lambda: run.health.counters.get("crc_errors", 0) >= 2)
        sim.units[3].faults.corrupt_crc = False
        await run.until(lambda: run.health.state is HealthState.OK)
    await sim.stop()


async def test_a_slow_poll_skips_ticks_and_counts_them(sdm630: Any) -> None:
    sim, url = sdm630
    sim.units[1].faults.delay = 0.15  # each of the 5 reads: a poll takes ~0.75 s
    meter = device(url=url, profile="eastron_sdm630", interval="100ms")
    async with running(meter, links=LinkManager()) as (run,):
        await run.until(lambda: run.health.counters.get("skipped_polls", 0) >= 5)
    assert run.health.counters["polls"] < run.health.counters["skipped_polls"]


async def test_dead_unit_on_a_bus_of_five() -> None:
    profile = load_profile("eastron_sdm120").registers
    sim = ModbusSimulator.of(dict.fromkeys(range(1, 6), profile))
    port = await sim.start_tcp(framing="rtu")
    sim.units[3].faults.silent = True
    links = LinkManager([LinkConfig(id="bus", url=f"tcp://127.0.0.1:{port}", pause="0ms")])
    interval, timeout = 0.5, 0.3
    meters = [
        device(
            id=f"m{u}",
            link="bus",
            framing="rtu",
            unit_id=u,
            profile="eastron_sdm120",
            interval=f"{interval}s",
            offset=f"{u * 90}ms",
            timeout=f"{timeout}s",
            dead_after=2,
            dead_max="2s",
        )
        for u in range(1, 6)
    ]
    async with running(*meters, links=links) as runs:
        dead, alive = runs[2], [runs[i] for i in (0, 1, 3, 4)]
        await dead.until(lambda: all(r.health.counters.get("polls", 0) >= 12 for r in alive))
        # The dead meter is asked ever less often ...
        assert dead.health.counters["polls"] <= 6
        assert dead.health.state is HealthState.DEGRADED
        assert dead.health.counters["timeouts"] == dead.health.counters["polls"]
        # ... and each of its requests held up the others by at most its timeout: no live
        # meter's polls ever drifted further apart than its interval plus that timeout
        # (plus one request's time for the queue it may have found).
        for run in alive:
            run.drain()
            assert run.health.counters.get("failed_polls", 0) == 0
            stamps = sorted({r.mono for r in run.readings if r.metric == "voltage"})
            gaps = [b - a for a, b in itertools.pairwise(stamps)]
            assert max(gaps) < interval + timeout + 0.15, (run.ctx.device_id, max(gaps))
        sim.units[3].faults.silent = False
        await dead.until(lambda: dead.health.state is HealthState.OK, timeout=8)
    await sim.stop()
    for run in runs:
        assert run.health.counters.get("crc_errors", 0) == 0  # no two frames ever overlapped


async def test_write_goes_to_the_device_ahead_of_polls() -> None:
    regs = [{"name": "setpoint", "type": "holding", "address": 40, "data_type": "float32"}]
    setpoint = RegisterSpec.model_validate(regs[0])
    sim = ModbusSimulator.of({1: (*load_profile("eastron_sdm630").registers, setpoint)})
    port = await sim.start_tcp()
    url = f"tcp://127.0.0.1:{port}"
    meter = device(url=url, profile="eastron_sdm630", registers=regs, interval="1h")
    async with running(meter, links=LinkManager()) as (run,):
        await run.until(lambda: run.health.counters.get("polls", 0) == 1)
        assert await meter.write("setpoint", 21.5) == {"register": "setpoint", "value": 21.5}
    await sim.stop()
    assert sim.units[1].get("setpoint") == 21.5
    assert sim.requests[1, 16] == 1
    with pytest.raises(ValueError, match="not a holding register"):
        await meter.write("l1_voltage", 1.0)


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat makes the pty pair")
async def test_rtu_on_a_serial_port(tmp_path: Path) -> None:
    gw_end, sim_end = tmp_path / "ttyGW", tmp_path / "ttySIM"
    socat = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={gw_end}", f"pty,raw,echo=0,link={sim_end}"],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not (gw_end.exists() and sim_end.exists()):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        sim = ModbusSimulator.of({1: load_profile("eastron_sdm120").registers})
        await sim.start_serial(str(sim_end))
        links = LinkManager([LinkConfig(id="bus", path=gw_end, pause="10ms")])
        meter = device(link="bus", profile="eastron_sdm120", interval="200ms")
        async with running(meter, links=links) as (run,):
            await run.until(lambda: run.health.counters.get("polls", 0) >= 2)
        await sim.stop()
        assert run.health.counters.get("failed_polls", 0) == 0
        assert 220 < run.values("voltage")[0] < 240
    finally:
        socat.terminate()
        socat.wait()


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="either `link`"):
        ModbusConfig.model_validate({"id": "m", "driver": "modbus", "profile": "eastron_sdm120"})
    with pytest.raises(ValueError, match="unknown profile 'sdm999'"):
        ModbusConfig.model_validate(
            {"id": "m", "driver": "modbus", "link": "b", "profile": "sdm999"}
        )
    with pytest.raises(ValueError, match="nothing to read"):
        ModbusConfig.model_validate({"id": "m", "driver": "modbus", "link": "b"})
    cfg = ModbusConfig.model_validate(
        {"id": "m", "driver": "modbus", "link": "b", "profile": "eastron_sdm630"}
    )
    assert cfg.resolved_unit() == 1
    assert max(b.count for b in cfg.read_plan()) <= 80  # the profile's per-request limit
