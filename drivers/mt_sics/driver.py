"""MT-SICS driver: poll `SI` (or stream `SIR`) on the balance's serial port, emit weights.

protocols.md §2.1: one command at a time, every line ends with CR LF, `S`/`SI`/`SIR` all
answer with ID `S`; `S S` is a stable weight, `S D` a dynamic one, `S I`/`S +`/`S -` and the
general errors `ES`/`ET`/`EL` are faults. Every reply becomes a `WeightSample`, faults with
`fault` set (and a NaN weight), so the pipeline counts them and inventory ignores them.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from typing import TYPE_CHECKING

from drivers.mt_sics.config import Mode, MtSicsConfig
from drivers.mt_sics.protocol import LineParser, Reply, Status, reset, send_immediate
from drivers.mt_sics.protocol import send_immediate_repeat as send_repeat
from gateway import Driver, DriverContext, WeightSample
from gateway.serial_port import close_serial, open_serial

if TYPE_CHECKING:
    from gateway.health import Health

READ_CHUNK = 256
WEIGHT_STATUSES = frozenset({Status.STABLE, Status.DYNAMIC})
GENERAL_ERRORS = frozenset({Status.SYNTAX_ERROR, Status.TRANSMISSION_ERROR, Status.LOGICAL_ERROR})


class _Line:
    """The balance's line: send one command, read decoded replies stamped on arrival."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        ctx: DriverContext,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._ctx = ctx
        self._parser = LineParser()
        self._pending: deque[tuple[Reply, float, float]] = deque()
        self._discarded = 0

    async def send(self, command: bytes) -> None:
        """Write one command line (stale, unread replies are dropped first)."""
        self._pending.clear()
        self._writer.write(command)
        await self._writer.drain()

    async def reply(self, wait: float) -> tuple[Reply, float, float]:
        """The next decodable reply with its arrival time; TimeoutError after `wait` s."""
        health = self._ctx.health
        async with asyncio.timeout(wait):
            while True:
                while self._pending:
                    reply, ts, mono = self._pending.popleft()
                    if reply.status is not Status.MALFORMED:
                        return reply, ts, mono
                    health.count("malformed_lines")
                chunk = await self._reader.read(READ_CHUNK)
                if not chunk:
                    raise ConnectionError("serial port closed")
                ts, mono = self._ctx.clock.now()
                self._pending.extend((r, ts, mono) for r in self._parser.feed(chunk))
                self._count_discarded(health)

    def _count_discarded(self, health: Health) -> None:
        if self._parser.discarded_bytes != self._discarded:
            health.count("discarded_bytes", self._parser.discarded_bytes - self._discarded)
            self._discarded = self._parser.discarded_bytes

    def cancel_stream(self) -> None:
        """Best effort, without waiting: `@` stops a running `SIR` (§2.1)."""
        if not self._writer.is_closing():
            self._writer.write(reset())


class MtSics(Driver):
    """Mettler Toledo MT-SICS balance: `SI` polls or an `SIR` stream → WeightSample (kg)."""

    name = "mt_sics"
    summary = "Mettler Toledo MT-SICS balances and weigh modules (SI polling or SIR stream)"
    Config = MtSicsConfig

    async def run(self, ctx: DriverContext) -> None:
        """Open the port, reset the balance, then poll or stream until cancelled."""
        cfg = self.config
        assert isinstance(cfg, MtSicsConfig)
        reader, writer = await open_serial(cfg)
        line = _Line(reader, writer, ctx)
        try:
            await self._identify(ctx, line, cfg)
            if cfg.mode is Mode.STREAM:
                await self._stream(ctx, line, cfg)
            else:
                await self._poll(ctx, line, cfg)
        finally:
            if cfg.mode is Mode.STREAM:
                line.cancel_stream()
            await close_serial(writer)

    async def _identify(self, ctx: DriverContext, line: _Line, cfg: MtSicsConfig) -> None:
        # `@` cancels an `SIR` stream left running by an earlier session and answers with the
        # serial number (`I4 A "..."`); a balance that stays quiet is caught by the polls.
        await line.send(reset())
        try:
            async with asyncio.timeout(cfg.timeout):
                while True:
                    reply, _, _ = await line.reply(cfg.timeout)
                    if reply.command == "I4":
                        if reply.text and ctx.state.get("serial") != reply.text[0]:
                            ctx.log.info("Balance serial number %r", reply.text[0])
                            ctx.state["serial"] = reply.text[0]
                        return
        except TimeoutError:
            ctx.log.debug("No answer to '@' within %.1fs", cfg.timeout)

    async def _poll(self, ctx: DriverContext, line: _Line, cfg: MtSicsConfig) -> None:
        missed = 0
        due = time.monotonic()
        while True:
            await line.send(send_immediate())
            try:
                reply, ts, mono = await self._weight_reply(line, cfg.timeout)
            except TimeoutError:
                missed = self._missed(ctx, missed + 1, cfg, "no answer to SI")
            else:
                missed = 0
                await self._emit(ctx, reply, ts, mono)
            due += cfg.interval
            now = time.monotonic()
            if due < now:
                # The balance answered slower than the interval: skip ticks, never queue polls.
                skipped = int((now - due) // cfg.interval) + 1
                ctx.health.count("skipped_polls", skipped)
                due += skipped * cfg.interval
            await asyncio.sleep(due - now)

    async def _stream(self, ctx: DriverContext, line: _Line, cfg: MtSicsConfig) -> None:
        await line.send(send_repeat())
        missed = 0
        while True:
            try:
                reply, ts, mono = await self._weight_reply(line, cfg.timeout)
            except TimeoutError:
                missed = self._missed(ctx, missed + 1, cfg, "SIR stream fell silent")
                continue
            missed = 0
            await self._emit(ctx, reply, ts, mono)

    @staticmethod
    def _missed(ctx: DriverContext, missed: int, cfg: MtSicsConfig, what: str) -> int:
        ctx.health.count("timeouts")
        if missed >= cfg.max_missed:
            raise TimeoutError(f"{what} ({missed} times in a row, {cfg.timeout:g}s each)")
        ctx.health.degraded(what)
        return missed

    @staticmethod
    async def _weight_reply(line: _Line, wait: float) -> tuple[Reply, float, float]:
        """The next reply to a weight command: ID `S` or a general error; others skipped."""
        async with asyncio.timeout(wait):
            while True:
                reply, ts, mono = await line.reply(wait)
                if reply.command == "S" or reply.status in GENERAL_ERRORS:
                    return reply, ts, mono

    @staticmethod
    async def _emit(ctx: DriverContext, reply: Reply, ts: float, mono: float) -> None:
        if reply.status in WEIGHT_STATUSES and reply.weight_kg is not None:
            await ctx.emit(WeightSample(ctx.device_id, reply.weight_kg, reply.stable, ts, mono))
            ctx.health.count("samples")
            ctx.health.ok()
            return
        fault = reply.fault or f"unexpected reply {reply.raw!r}"
        await ctx.emit(
            WeightSample(ctx.device_id, math.nan, stable=False, ts=ts, mono=mono, fault=fault)
        )
        ctx.health.count("faults")
        ctx.health.degraded(fault)
