"""Toledo continuous-output driver: read the indicator's frame stream, emit weights.

protocols.md §2.2: the indicator streams fixed-length frames without being asked; the
parser (`protocol.FrameParser`) resynchronises on the next STX after noise or a cut frame.
Frames are thinned to one `WeightSample` per `interval`, except that a change of stability
or of fault is emitted at once (a shelf count must not wait for the next tick).
"""

from __future__ import annotations

import asyncio
import math

from drivers.toledo.config import ToledoConfig
from drivers.toledo.protocol import Frame, FrameParser
from gateway import Driver, DriverContext, WeightSample
from gateway.serial_port import close_serial, open_serial

READ_CHUNK = 256


class Toledo(Driver):
    """Toledo continuous output (Mettler Toledo and emulations) → WeightSample (kg)."""

    name = "toledo"
    summary = "Scale indicators streaming Toledo continuous output (Mettler Toledo and emulations)"
    Config = ToledoConfig

    async def run(self, ctx: DriverContext) -> None:
        """Read frames until cancelled; reconnect (raise) after `max_missed` silent timeouts."""
        cfg = self.config
        assert isinstance(cfg, ToledoConfig)
        parser = FrameParser(tare_field=cfg.tare_field, checksum=cfg.checksum)
        reader, writer = await open_serial(cfg)
        missed = 0
        counted = (0, 0)
        last: tuple[float, bool, str | None] | None = None  # mono, stable, fault emitted
        try:
            while True:
                try:
                    frames = await self._frames(reader, parser, cfg.timeout)
                except TimeoutError:
                    missed += 1
                    ctx.health.count("timeouts")
                    what = f"no valid frame for {missed * cfg.timeout:g}s"
                    if parser.discarded_bytes:
                        what += f" ({parser.discarded_bytes} bytes discarded so far)"
                    if missed >= cfg.max_missed:
                        raise TimeoutError(what) from None
                    ctx.health.degraded(what)
                    continue
                finally:
                    counted = _count(ctx, parser, counted)
                missed = 0
                ts, mono = ctx.clock.now()
                for frame in frames:
                    if last is None or _due(frame, last, mono, cfg.interval):
                        await ctx.emit(_sample(ctx.device_id, frame, ts, mono))
                        last = (mono, frame.stable, frame.fault)
                    ctx.health.count("frames")
                if frames[-1].fault is None:
                    ctx.health.ok()
                else:
                    ctx.health.degraded(frames[-1].fault)
        finally:
            await close_serial(writer)

    @staticmethod
    async def _frames(
        reader: asyncio.StreamReader, parser: FrameParser, wait: float
    ) -> list[Frame]:
        """Read until at least one valid frame is complete; TimeoutError after `wait` s."""
        async with asyncio.timeout(wait):
            while True:
                chunk = await reader.read(READ_CHUNK)
                if not chunk:
                    raise ConnectionError("serial port closed")
                frames = parser.feed(chunk)
                if frames:
                    return frames


def _due(frame: Frame, last: tuple[float, bool, str | None], mono: float, interval: float) -> bool:
    last_mono, last_stable, last_fault = last
    changed = frame.stable != last_stable or frame.fault != last_fault
    return changed or mono - last_mono >= interval


def _sample(device: str, frame: Frame, ts: float, mono: float) -> WeightSample:
    if frame.weight_kg is None:
        # Out of range or a unit without a kg factor: a fault, never a number to count with.
        fault = frame.fault or "no usable weight in the frame"
        return WeightSample(
            device, math.nan, stable=False, ts=ts, mono=mono, tare_kg=frame.tare_kg, fault=fault
        )
    return WeightSample(device, frame.weight_kg, frame.stable, ts, mono, frame.tare_kg, frame.fault)


def _count(ctx: DriverContext, parser: FrameParser, counted: tuple[int, int]) -> tuple[int, int]:
    """Move the parser's damage counters into the device's health counters."""
    discarded, bad = parser.discarded_bytes, parser.bad_checksums
    if discarded != counted[0]:
        ctx.health.count("discarded_bytes", discarded - counted[0])
    if bad != counted[1]:
        ctx.health.count("bad_checksums", bad - counted[1])
    return discarded, bad
