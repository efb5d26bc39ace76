"""The Toledo continuous-output driver over a real pty: the computed frames of protocols.md
§2.2, a scale bouncing between motion and rest, noise, cut frames, bad checksums, silence
and unplugging."""

from __future__ import annotations

import math

import pytest

from drivers.toledo import Toledo
from drivers.toledo.config import ToledoConfig
from drivers.toledo.simulator import ToledoSimulator, encode_frame
from gateway.events import WeightSample
from gateway.pty import PtyPair
from tests.drivers.serial_rig import Bench, running

# protocols.md §2.2, worked frames (computed), with their checksum byte.
GOLDEN = [
    bytes.fromhex("022C3020303031323334303030303030 0D2B".replace(" ", "")),
    bytes.fromhex("022C3920303030313530303030323030 0D24".replace(" ", "")),
    bytes.fromhex("022C3B20303030313530303030323030 0D22".replace(" ", "")),
]


def config(port: str, **kw: object) -> ToledoConfig:
    fields: dict[str, object] = {"id": "scale-2", "port": port, "interval": "0ms"}
    fields["timeout"] = "200ms"
    return ToledoConfig.model_validate({**fields, **kw})


def test_simulator_frames_equal_the_reference_bytes() -> None:
    assert encode_frame(12.34, with_checksum=True) == GOLDEN[0]
    assert encode_frame(1.5, 2.0, motion=True, net=True, with_checksum=True) == GOLDEN[1]
    assert encode_frame(-1.5, 2.0, motion=True, net=True, with_checksum=True) == GOLDEN[2]


async def test_golden_frames_with_checksum() -> None:
    indicator = PtyPair()
    bench = Bench()
    try:
        async with running(Toledo(config(indicator.path, checksum=True)), bench):
            await bench.prime(lambda: indicator.write(GOLDEN[0]), WeightSample)
            discarded = bench.health.counters.get("discarded_bytes", 0)
            # Split across writes, with noise in front: the parser must find each STX.
            stream = b"\x55\x7f" + b"".join(GOLDEN)
            await indicator.write(stream[:9])
            await indicator.write(stream[9:])
            samples = [await bench.next(WeightSample) for _ in range(3)]
    finally:
        indicator.close()
    assert [(s.weight_kg, s.tare_kg, s.stable) for s in samples] == [
        (12.34, 0.0, True),
        (1.5, 2.0, False),
        (-1.5, 2.0, False),
    ]
    assert all(s.fault is None for s in samples)
    assert bench.health.counters["discarded_bytes"] - discarded == 2


async def test_scale_bouncing_between_motion_and_rest() -> None:
    bounce = [(3.0, False), (2.1, True), (3.9, True), (2.5, False), (2.5, False)]
    async with ToledoSimulator(3.0, period=0.02) as sim:
        bench = Bench()
        async with running(Toledo(config(sim.path)), bench):
            await bench.next(WeightSample)
            sim.script.extend(bounce)
            samples = await bench.until(WeightSample, lambda s: s.weight_kg == 2.5)
            samples.append(await bench.next(WeightSample))
    seen = [(s.weight_kg, s.stable) for s in samples]
    # Each scripted frame comes through with the indicator's own motion flag.
    assert seen[-5:] == [(w, not motion) for w, motion in bounce]


async def test_interval_thins_frames_but_stability_changes_go_out_at_once() -> None:
    async with ToledoSimulator(1.0, period=0.01) as sim:
        bench = Bench()
        async with running(Toledo(config(sim.path, interval="1h")), bench):
            first = await bench.next(WeightSample)
            sim.motion = True
            moving = await bench.next(WeightSample)
            frames = sim.frames_sent
    assert first.stable and not moving.stable
    assert frames > 2  # frames kept coming; only the change was emitted


async def test_garbage_truncated_frames_and_bad_checksums_resynchronise() -> None:
    async with ToledoSimulator(1.25, period=0.02, with_checksum=True) as sim:
        bench = Bench()
        async with running(Toledo(config(sim.path, checksum=True)), bench):
            await bench.next(WeightSample)
            sim.garbage = b"\x02\x02garbage\r\xff\x00"
            sim.truncate_next = True
            await bench.next(WeightSample)
            sim.bad_checksum_next = True
            sim.weight_kg = 4.5
            after = await bench.until(WeightSample, lambda s: s.weight_kg == 4.5)
    assert all(s.weight_kg in (1.25, 4.5) for s in after)
    assert bench.health.counters["discarded_bytes"] > 0
    assert bench.health.counters["bad_checksums"] == 1


async def test_overload_frame_is_a_fault_without_a_weight() -> None:
    async with ToledoSimulator(1.0, period=0.02) as sim:
        bench = Bench()
        async with running(Toledo(config(sim.path)), bench):
            await bench.next(WeightSample)
            sim.overload = True
            fault = await bench.until(WeightSample, lambda s: s.fault is not None)
            assert bench.health.state == "degraded"
    assert math.isnan(fault[-1].weight_kg)
    assert "out of range" in (fault[-1].fault or "")


async def test_silence_then_reconnect_by_raising() -> None:
    async with ToledoSimulator(1.0, period=0.02) as sim:
        bench = Bench()
        async with running(Toledo(config(sim.path, max_missed=2, timeout="100ms")), bench):
            await bench.next(WeightSample)
            sim.silent = True
            exc = await bench.ended()
    assert isinstance(exc, TimeoutError)
    assert bench.health.counters["timeouts"] == 2


async def test_wrong_frame_setting_reports_discarded_bytes() -> None:
    """Short frames read as long ones: nothing valid, the timeout names the discarded bytes."""
    async with ToledoSimulator(1.0, period=0.02, tare_field=False) as sim:
        bench = Bench()
        async with running(Toledo(config(sim.path, max_missed=1, timeout="150ms")), bench):
            exc = await bench.ended()
    assert isinstance(exc, TimeoutError)
    assert "bytes discarded" in str(exc)


async def test_unplugged_port_raises_oserror() -> None:
    async with ToledoSimulator(1.0, period=0.02) as sim:
        bench = Bench()
        async with running(Toledo(config(sim.path)), bench):
            await bench.next(WeightSample)
            sim.disconnect()
            exc = await bench.ended()
    assert isinstance(exc, OSError)


@pytest.mark.parametrize("interval", ["0ms", "250ms"])
def test_config_accepts_interval(interval: str) -> None:
    assert config("/dev/null", interval=interval).interval in (0.0, 0.25)
