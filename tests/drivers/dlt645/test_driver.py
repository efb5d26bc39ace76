"""The DL/T 645 driver against the meter simulator on a pseudo-terminal (8N1: contract.md)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pytest

from drivers.dlt645.config import Dlt645Config
from drivers.dlt645.driver import Dlt645, ReplyReceiver
from drivers.dlt645.identifiers import BY_NAME
from drivers.dlt645.protocol import (
    AddressReply,
    DataReply,
    Function,
    address_reply,
    encode_frame,
)
from drivers.dlt645.simulator import Dlt645Simulator, SimulatedMeter
from gateway.config.links import LinkConfig
from gateway.events import Quality
from gateway.health import HealthState
from gateway.links import LinkManager
from tests.drivers.harness import running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

A, B = "000012345678", "000087654321"
H = bytes.fromhex


def meter(address: str | None = A, **kw: Any) -> Dlt645:
    fields = {"id": f"m{address}", "driver": "dlt645", "link": "bus", "interval": "1s", **kw}
    if address is not None:
        fields["address"] = address
    return Dlt645(Dlt645Config.model_validate(fields))


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[tuple[Dlt645Simulator, LinkManager, Path]]:
    sim = Dlt645Simulator([SimulatedMeter(A), SimulatedMeter(B)])
    by_id = tmp_path / "usb-1a86_USB_Serial-if00-port0"
    by_id.symlink_to(await sim.start())
    links = LinkManager([LinkConfig(id="bus", path=by_id, pause="5ms", timeout="200ms")])
    yield sim, links, by_id
    await links.close()
    await sim.stop()


def test_receiver_decodes_the_reference_reply() -> None:
    # protocols.md §3.2 worked example: 123456.78 kWh from meter 000012345678.
    receiver = ReplyReceiver(A, Function.READ_DATA)
    wire = H("FE FE FE FE 68 78 56 34 12 00 00 68 91 08 33 33 34 33 AB 89 67 45 2A 16")
    assert receiver.feed(wire[:9]) is None
    reply = receiver.feed(wire[9:])
    assert isinstance(reply, DataReply)
    assert BY_NAME["import_active_energy"].decode(reply.value) == 123456.78
    # Another meter's reply is not ours; the read-address reply of the wildcard is.
    assert ReplyReceiver(B, Function.READ_DATA).feed(wire) is None
    reply = ReplyReceiver(None, Function.READ_ADDRESS).feed(encode_frame(address_reply(A)))
    assert reply == AddressReply(A)


async def test_two_meters_on_one_bus_read_by_address(bus: Any) -> None:
    sim, links, _ = bus
    first, second = meter(A), meter(B, offset="500ms")
    async with running(first, second, links=links) as runs:
        await runs[0].until(lambda: all(r.health.counters.get("polls", 0) >= 2 for r in runs))
    for run in runs:
        run.drain()
        values = {r.metric: r for r in run.readings}
        assert values["voltage_a"].value == 220.1
        assert values["current_a"].value == 1.234
        assert values["power_factor"].value == 0.985
        assert values["frequency"].value == 50.01
        energy = values["import_active_energy"]
        assert energy.counter and energy.unit == "kWh" and energy.wrap == 1_000_000
        assert energy.value >= 1234.56
        assert run.health.state is HealthState.OK
    assert sim.requests[A] == sim.requests[B] >= 12


async def test_unknown_identifier_is_an_abnormal_reply_marking_that_metric_bad(bus: Any) -> None:
    _, links, _ = bus
    device = meter(A, metrics=["export_active_energy", "voltage_a"])
    async with running(device, links=links) as (run,):
        await run.until(lambda: run.health.counters.get("polls", 0) >= 2)
    export = [r for r in run.readings if r.metric == "export_active_energy"]
    assert export and all(r.quality is Quality.BAD and math.isnan(r.value) for r in export)
    assert run.values("voltage_a")[0] == 220.1
    assert run.health.counters["abnormal_replies"] == len(export)
    assert run.health.state is HealthState.OK  # the meter answers; one metric is refused


async def test_address_discovery_on_a_point_to_point_line(tmp_path: Path) -> None:
    sim = Dlt645Simulator([SimulatedMeter(B)])
    links = LinkManager([LinkConfig(id="bus", path=await sim.start(), timeout="200ms")])
    device = meter(None, metrics=["voltage_a"])
    async with running(device, links=links) as (run,):
        await run.until(lambda: run.health.counters.get("polls", 0) >= 1)
    await sim.stop()
    assert run.ctx.state["address"] == B
    assert sim.requests["AAAAAAAAAAAA"] == 1
    assert run.values("voltage_a") == [220.1]


async def test_checksum_errors_timeouts_and_recovery(bus: Any) -> None:
    sim, links, _ = bus
    device = meter(A, metrics=["voltage_a"], interval="1s", dead_after=100)
    faults = sim.meters[A].faults
    async with running(device, links=links) as (run,):
        faults.corrupt_checksum = True
        await run.until(lambda: run.health.counters.get("checksum_errors", 0) >= 1)
        assert run.health.state is HealthState.DEGRADED
        faults.corrupt_checksum = False
        faults.silent = True
        await run.until(lambda: run.health.counters.get("timeouts", 0) >= 1)
        faults.silent = False
        await run.until(lambda: run.health.state is HealthState.OK)
    assert run.health.counters["failed_polls"] >= 2


async def test_adapter_unplugged_and_plugged_back(bus: Any) -> None:
    sim, links, by_id = bus
    device = meter(A, metrics=["voltage_a"], interval="1s", dead_after=100)
    async with running(device, links=links) as (run,):
        await run.until(lambda: run.health.counters.get("polls", 0) >= 1)
        sim.unplug()
        by_id.unlink()
        await run.until(lambda: run.health.counters.get("link_down", 0) >= 1)
        by_id.symlink_to(await sim.start())  # the adapter is back, as a new tty
        good = len(run.values("voltage_a"))
        await run.until(lambda: len(run.values("voltage_a")) > good, timeout=15)
        assert run.health.state is HealthState.OK
    assert links.stats()["bus"]["opens"] == 2


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="12 digits"):
        Dlt645Config.model_validate({"id": "m", "driver": "dlt645", "link": "b", "address": "12"})
    with pytest.raises(ValueError, match="unknown metric 'voltage_x'"):
        Dlt645Config.model_validate(
            {"id": "m", "driver": "dlt645", "link": "b", "metrics": ["voltage_x"]}
        )
    cfg = Dlt645Config.model_validate(
        {"id": "m", "driver": "dlt645", "link": "b", "metrics": ["import_active_energy_t2"]}
    )
    assert Dlt645(cfg).ids[0].di == 0x00010200
