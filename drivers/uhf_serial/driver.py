"""The serial UHF reader driver: an inventory loop over R2000 or M100 frames → TagRead.

R2000 (protocols.md §1.3): real-time inventory (0x89) runs one round and stops, so the
driver re-issues it after each end-of-round frame (or "no tag" error), switching the work
antenna (0x74) between rounds when several ports are configured. M100 (§1.4): multiple
polling (0x27) for `poll_count` rounds; tags arrive as notifications and an empty round
as error 0x15 (routine). The module stops when the count runs out, so a first quiet
`timeout` re-sends the command; `max_missed` quiet periods in a row raise, and the
supervisor reopens the port (like the scale drivers: a local port has no "reconnect"
that reopening does not do better).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from drivers.uhf_serial import m100, r2000
from drivers.uhf_serial.config import UhfProtocol, UhfSerialConfig
from drivers.uhf_serial.protocol import FrameParser, RoundEnd, UhfError, UhfFrame, UhfTag
from gateway import Driver, DriverContext, TagRead
from gateway.serial_port import close_serial, open_serial

if TYPE_CHECKING:
    from collections.abc import Sequence

READ_CHUNK = 4096


class _Line:
    """The open port with its parser: send requests, read frames with a silence limit."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        parser: FrameParser,
        ctx: DriverContext,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.parser = parser
        self._ctx = ctx
        self._seen = (0, 0)

    async def send(self, frame: bytes) -> None:
        self._writer.write(frame)
        await self._writer.drain()

    async def frames(self, within: float) -> list[UhfFrame]:
        """The frames completed by the next bytes; TimeoutError after `within` of silence."""
        async with asyncio.timeout(within):
            chunk = await self._reader.read(READ_CHUNK)
        if not chunk:
            raise ConnectionError("serial port closed")
        frames = self.parser.feed(chunk)
        stats = self.parser.stats
        if (stats.garbage_bytes, stats.bad_frames) != self._seen:
            # Counters for status, never log lines (style.md §7).
            health = self._ctx.health
            health.count("garbage_bytes", stats.garbage_bytes - self._seen[0])
            health.count("bad_frames", stats.bad_frames - self._seen[1])
            self._seen = (stats.garbage_bytes, stats.bad_frames)
        return frames

    async def emit_tags(self, frames: Sequence[UhfFrame]) -> int:
        """Emit a TagRead per tag frame; returns how many."""
        ctx = self._ctx
        ts, mono = ctx.clock.now()
        n = 0
        for f in frames:
            if isinstance(f, UhfTag):
                await ctx.emit(TagRead(ctx.device_id, f.antenna, f.epc, f.rssi, ts, mono, f.reads))
                n += 1
        if n:
            ctx.health.count("tag_reads", n)
        return n

    def write_nowait(self, frame: bytes) -> None:
        """Best effort, at shutdown."""
        if not self._writer.is_closing():
            self._writer.write(frame)


class UhfSerial(Driver):
    """Serial/USB UHF RFID reader (R2000 0xA0 or M100 0xBB protocol) → TagRead."""

    name = "uhf_serial"
    summary = "Serial/USB UHF RFID readers: R2000 (0xA0) and M100/QM100 (0xBB) modules"
    Config = UhfSerialConfig

    async def run(self, ctx: DriverContext) -> None:
        """Open the port and inventory until cancelled; raise when the reader goes quiet."""
        cfg = self.config
        assert isinstance(cfg, UhfSerialConfig)
        parser: FrameParser
        if cfg.protocol is UhfProtocol.R2000:
            parser = r2000.R2000Parser(cfg.address, eight_antennas=cfg.ports == 8)
        else:
            parser = m100.M100Parser(cfg.poll_count)
        reader, writer = await open_serial(cfg)
        line = _Line(reader, writer, parser, ctx)
        try:
            if cfg.protocol is UhfProtocol.R2000:
                await self._r2000(ctx, line, cfg)
            else:
                await self._m100(ctx, line, cfg)
        finally:
            if cfg.protocol is UhfProtocol.M100:
                # Stop polling so the module is quiet for the next session (§1.4, 0x28).
                with contextlib.suppress(OSError, RuntimeError):
                    line.write_nowait(m100.build_stop_multi_poll())
            await close_serial(writer)

    async def _r2000(self, ctx: DriverContext, line: _Line, cfg: UhfSerialConfig) -> None:
        missed = 0
        problems: dict[int, str] = {}
        while True:
            for antenna in cfg.antennas:
                if len(cfg.antennas) > 1:
                    await line.send(r2000.build_set_work_antenna(cfg.address, antenna))
                await line.send(r2000.build_realtime_inventory(cfg.address))
                error = await self._r2000_round(line, cfg)
                if error is None:
                    missed += 1
                    ctx.health.count("silent_rounds")
                    if missed >= cfg.max_missed:
                        raise TimeoutError(f"no answer to {missed} inventory rounds in a row")
                    problems[antenna] = "no answer to inventory"
                    continue
                missed = 0
                if error:
                    ctx.health.count("reader_errors")
                    problems[antenna] = error
                else:
                    problems.pop(antenna, None)
            # Judge health once per pass over the antennas, so one missing antenna among
            # four gives one "Degraded" line, not one per round.
            if problems:
                ctx.health.degraded(
                    "; ".join(f"antenna {a}: {t}" for a, t in sorted(problems.items()))
                )
            else:
                ctx.health.ok()

    async def _r2000_round(self, line: _Line, cfg: UhfSerialConfig) -> str | None:
        """One round: "" when it ended normally, an error text, or None when silent."""
        while True:
            try:
                frames = await line.frames(cfg.timeout)
            except TimeoutError:
                return None
            await line.emit_tags(frames)
            for f in frames:
                if isinstance(f, RoundEnd):
                    return ""
                if isinstance(f, UhfError) and f.command in (
                    r2000.CMD_REALTIME_INVENTORY,
                    r2000.CMD_SET_WORK_ANTENNA,
                ):
                    # "No tag" ends an empty round; anything else (0x22 antenna missing)
                    # ends it too, with a reason.
                    return "" if f.no_tag else f.text

    async def _m100(self, ctx: DriverContext, line: _Line, cfg: UhfSerialConfig) -> None:
        poll = m100.build_multi_poll(cfg.poll_count)
        await line.send(poll)
        missed = 0
        while True:
            try:
                frames = await line.frames(cfg.timeout)
            except TimeoutError:
                missed += 1
                if missed >= cfg.max_missed:
                    raise TimeoutError(f"module silent for {missed} polls in a row") from None
                if missed > 1:
                    ctx.health.degraded("module does not answer multiple polling")
                # The first quiet period is normal: the poll count ran out. Poll again.
                ctx.health.count("poll_restarts")
                await line.send(poll)
                continue
            await line.emit_tags(frames)
            if not frames:
                continue
            missed = 0
            for f in frames:
                if isinstance(f, UhfError) and not f.no_tag:
                    ctx.health.count("reader_errors")
                    ctx.log.debug("Module error 0x%02x: %s", f.code, f.text)
            ctx.health.ok()
