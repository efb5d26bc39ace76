"""The MT-SICS driver over a real pty: golden reply lines from protocols.md §2.1, the
simulator's fault switches, a scale bouncing between stable and dynamic, silence, unplug."""

from __future__ import annotations

import math

import pytest

from drivers.mt_sics import MtSics
from drivers.mt_sics.config import MtSicsConfig
from drivers.mt_sics.simulator import MtSicsSimulator
from gateway.events import WeightSample
from gateway.pty import PtyPair
from gateway.shelf_binding import ShelfScaleCounter, ShelfScaleFields
from tests.drivers.serial_rig import Bench, running


def config(port: str, **kw: object) -> MtSicsConfig:
    fields: dict[str, object] = {"id": "scale-1", "port": port, "interval": "50ms"}
    fields["timeout"] = "300ms"
    return MtSicsConfig.model_validate({**fields, **kw})


async def test_golden_replies_from_the_reference() -> None:
    """The driver sends `@` then `SI` lines and reads the §2.1 example replies."""
    balance = PtyPair()
    replies = [
        b'I4 A "0123456789"\r\n',  # answer to @
        b"S S     100.00 g\r\n",
        b"S D     99.87 g\r\n",
        b"S +\r\n",
        b"ES\r\n",
        b"S S     -0.512 kg\r\n",
    ]
    bench = Bench()
    try:
        async with running(MtSics(config(balance.path)), bench):
            sent = []
            for reply in replies:
                sent.append(await balance.readline(b"\n"))
                await balance.write(reply)
            samples = [await bench.next(WeightSample) for _ in range(5)]
    finally:
        balance.close()
    assert sent[0] == b"@\r\n"
    assert set(sent[1:]) == {b"SI\r\n"}
    assert (samples[0].weight_kg, samples[0].stable, samples[0].fault) == (0.1, True, None)
    assert samples[1].weight_kg == pytest.approx(0.09987)
    assert samples[1].stable is False
    assert samples[2].fault is not None and "overload" in samples[2].fault
    assert math.isnan(samples[2].weight_kg)
    assert samples[3].fault is not None and "syntax error" in samples[3].fault
    assert (samples[4].weight_kg, samples[4].stable) == (-0.512, True)
    assert bench.ctx.state.get("serial") == "0123456789"
    assert bench.health.counters["faults"] == 2


async def test_scale_bouncing_between_stable_and_dynamic_counts_only_stable() -> None:
    """Dynamic readings pass through as such; the shelf count moves only on stable ones."""
    bounce = [(1.0, True), (0.62, False), (1.35, False), (1.0, True), (0.75, True)]
    bounce += [(0.75, True), (0.75, True)]
    async with MtSicsSimulator(1.0) as sim:
        sim.script.extend(bounce)
        bench = Bench()
        async with running(MtSics(config(sim.path)), bench):
            samples = [await bench.next(WeightSample) for _ in range(len(bounce))]
    assert [(s.weight_kg, s.stable) for s in samples] == bounce
    counter = ShelfScaleCounter("scale-1", "A1", 0.25, ShelfScaleFields(count_hold=3))
    counts = [c.count if (c := counter.update(s)) else None for s in samples]
    # 4 units; the dynamic 0.62/1.35 kg swings change nothing; 3 units after 3 stable readings.
    assert counts == [4, 4, 4, 4, 4, 4, 3]


async def test_garbage_and_truncated_lines_resynchronise() -> None:
    async with MtSicsSimulator(0.5, unit="kg", decimals=3) as sim:
        bench = Bench()
        async with running(MtSics(config(sim.path)), bench):
            first = await bench.next(WeightSample)
            sim.garbage = b"\x00\xff\xfe noise \r\n" + b"#" * 400
            sim.truncate_next = True
            sim.weight_kg = 0.75
            after = await bench.until(WeightSample, lambda s: s.weight_kg == 0.75)
    assert first.weight_kg == 0.5
    assert all(s.fault is None for s in after)
    counters = bench.health.counters
    assert counters.get("malformed_lines", 0) + counters.get("discarded_bytes", 0) > 0


async def test_overload_is_a_fault_and_recovery_is_ok() -> None:
    async with MtSicsSimulator(2.0) as sim:
        bench = Bench()
        async with running(MtSics(config(sim.path)), bench):
            await bench.next(WeightSample)
            sim.overload = True
            fault = await bench.until(WeightSample, lambda s: s.fault is not None)
            assert bench.health.state == "degraded"
            sim.overload = False
            await bench.until(WeightSample, lambda s: s.fault is None)
            assert bench.health.state == "ok"
    assert "overload" in (fault[-1].fault or "")


async def test_silence_degrades_then_raises_timeout() -> None:
    async with MtSicsSimulator(1.0) as sim:
        bench = Bench()
        async with running(MtSics(config(sim.path, max_missed=2, timeout="100ms")), bench):
            await bench.next(WeightSample)
            sim.silent = True
            exc = await bench.ended()
    assert isinstance(exc, TimeoutError)
    assert "no answer to SI" in str(exc)
    assert bench.health.counters["timeouts"] == 2


async def test_unplugged_port_raises_oserror() -> None:
    async with MtSicsSimulator(1.0) as sim:
        bench = Bench()
        async with running(MtSics(config(sim.path)), bench):
            await bench.next(WeightSample)
            sim.disconnect()
            exc = await bench.ended()
    assert isinstance(exc, OSError)


async def test_missing_port_fails_to_open() -> None:
    bench = Bench()
    async with running(MtSics(config("/dev/does-not-exist-storegw")), bench):
        exc = await bench.ended()
    assert isinstance(exc, OSError)


async def test_stream_mode_reads_sir_and_cancels_with_reset() -> None:
    async with MtSicsSimulator(0.3, repeat_interval=0.02) as sim:
        bench = Bench()
        async with running(MtSics(config(sim.path, mode="stream")), bench):
            samples = [await bench.next(WeightSample) for _ in range(5)]
            await sim.heard("SIR")
        await sim.heard("@", count=2)
    assert all(s.weight_kg == pytest.approx(0.3) and s.stable for s in samples)
    assert sim.commands[:2] == ["@", "SIR"]
    assert sim.commands.count("SIR") == 1
    assert sim.commands[-1] == "@"  # the stream is cancelled when the driver stops
