"""Simulated devices for the demo and tests: an energy meter and a till.

Deterministic for a seed: values come from `random.Random(seed)`, so two runs with the
same seed and the same timing produce the same numbers. They run through the real
supervisor and pipeline exactly like protocol drivers.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from decimal import Decimal

from drivers.sim.config import Faults, SimMeterConfig, SimPosConfig
from gateway import Driver, DriverContext, Reading, Sale


class SimulatedFaultError(RuntimeError):
    """Raised by the `crash_every` fault switch."""


class _FaultClock:
    """Applies a device's fault switches relative to its start."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.started = time.monotonic()

    async def check(self) -> None:
        elapsed = time.monotonic() - self.started
        if self.faults.crash_every is not None and elapsed >= self.faults.crash_every:
            raise SimulatedFaultError(f"simulated crash after {elapsed:.1f}s")
        if self.faults.hang_after is not None and elapsed >= self.faults.hang_after:
            await asyncio.Event().wait()  # hang: never reports health again


class SimMeter(Driver):
    """Simulated three-phase energy meter (kWh counter, power, voltage)."""

    name = "sim_meter"
    summary = "Simulated energy meter: cumulative kWh, active power, phase voltages"
    Config = SimMeterConfig

    async def run(self, ctx: DriverContext) -> None:
        """Poll forever at the configured interval."""
        cfg = self.config
        assert isinstance(cfg, SimMeterConfig)
        rng = random.Random(cfg.seed)
        faults = _FaultClock(cfg.faults)
        # The counter lives in the device (state survives restarts, like a real meter's).
        kwh = float(ctx.state.get("kwh", cfg.start_kwh))
        last = time.monotonic()
        while True:
            await faults.check()
            ts, mono = ctx.clock.now()
            hour = (ts / 3600) % 24
            # Daily shape: fridges all day, lights and tills 8-20h.
            shape = 0.6 + 0.4 * max(0.0, math.sin((hour - 7) / 13 * math.pi))
            power = max(0.0, rng.gauss(cfg.power_kw * shape, cfg.power_kw * 0.05))
            kwh += power * (mono - last) / 3600
            last = mono
            if cfg.wrap_kwh is not None and kwh >= cfg.wrap_kwh:
                kwh -= cfg.wrap_kwh
            ctx.state["kwh"] = round(kwh, 6)
            dev = ctx.device_id
            await ctx.emit(
                Reading(
                    dev, "energy", round(kwh, 4), "kWh", ts, mono, counter=True, wrap=cfg.wrap_kwh
                )
            )
            await ctx.emit(Reading(dev, "power", round(power, 4), "kW", ts, mono))
            for phase in (1, 2, 3):
                volts = round(rng.gauss(230.0, 1.5), 2)
                await ctx.emit(Reading(dev, f"voltage.l{phase}", volts, "V", ts, mono))
            ctx.health.ok()
            await asyncio.sleep(cfg.interval)


class SimPos(Driver):
    """Simulated till: sale lines with consecutive transaction numbers from 1."""

    name = "sim_pos"
    summary = "Simulated till: sales with consecutive transaction numbers, SKU, qty, price"
    Config = SimPosConfig

    async def run(self, ctx: DriverContext) -> None:
        """Ring up transactions at random intervals forever."""
        cfg = self.config
        assert isinstance(cfg, SimPosConfig)
        faults = _FaultClock(cfg.faults)
        txn = int(ctx.state.get("txn", 0))
        rng = random.Random(
            cfg.seed * 1_000_003 + txn
        )  # resumes a different stream after a restart
        mean_gap = 60.0 / cfg.sales_per_minute
        ctx.health.ok()
        while True:
            gap = rng.expovariate(1.0 / mean_gap)
            # Sleep in slices no longer than 10 s so health stays fresh on a quiet till.
            while gap > 0:
                await asyncio.sleep(min(gap, 10.0))
                gap -= 10.0
                ctx.health.ok()
                await faults.check()
            txn += 1
            ts, mono = ctx.clock.now()
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                item = rng.choice(cfg.items)
                qty = Decimal(rng.choice((1, 1, 1, 2, 3)))
                await ctx.emit(
                    Sale(
                        ctx.device_id,
                        str(txn),
                        item.sku,
                        qty,
                        item.price,
                        (item.price * qty).quantize(item.price),
                        cfg.currency,
                        ts,
                        mono,
                    )
                )
            ctx.state["txn"] = txn
            ctx.health.ok()
