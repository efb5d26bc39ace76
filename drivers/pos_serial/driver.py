"""POS capture driver: tap a till's serial stream, emit one `Sale` per sold line.

contract.md "POS capture": sale lines, receipts (emitted whole when they end, with the
footer's txn; `total_mismatch` kept, never dropped) or a pole display (name and price only:
`Sale(sku=None, text=name)`, resolved to a SKU by the pipeline's catalog lookup). Lines that
match nothing are counted and logged, rate-limited. Silence is normal for a till: it ends an
open receipt after `timeout` and keeps the device healthy.
"""

from __future__ import annotations

import asyncio
import time

from drivers.pos_serial.config import PosSerialConfig
from drivers.pos_serial.decoders import Output, make_decoder
from drivers.pos_serial.display import DisplayItem, DisplayTotal
from drivers.pos_serial.parsing import Receipt, Reject, SaleLine
from gateway import Driver, DriverContext, Sale
from gateway.serial_port import close_serial, open_serial

READ_CHUNK = 4096
LOG_EVERY = 60.0
"""Seconds between two log lines about unmatched lines (the first is logged at once)."""


class _RejectLog:
    """Logs the first unmatched line, then at most one summary line per `LOG_EVERY`."""

    def __init__(self, ctx: DriverContext) -> None:
        self._ctx = ctx
        self._last: float | None = None
        self._held = 0

    def add(self, reject: Reject) -> None:
        self._ctx.health.count("unmatched_lines")
        now = time.monotonic()
        if self._last is not None and now - self._last < LOG_EVERY:
            self._held += 1
            return
        more = f" ({self._held} more since the last report)" if self._held else ""
        self._ctx.log.warning("Line skipped, %s: %r%s", reject.reason, reject.text[:120], more)
        self._last, self._held = now, 0


class PosSerial(Driver):
    """Till capture: sale lines, ESC/POS receipts or a pole display → Sale events."""

    name = "pos_serial"
    summary = "POS capture from a till's serial stream: sale lines, ESC/POS receipts, pole display"
    Config = PosSerialConfig

    async def run(self, ctx: DriverContext) -> None:
        """Read the stream until cancelled; raise when the port goes away."""
        cfg = self.config
        assert isinstance(cfg, PosSerialConfig)
        decoder = make_decoder(cfg)
        rejects = _RejectLog(ctx)
        reader, writer = await open_serial(cfg)
        ctx.health.ok()
        try:
            while True:
                try:
                    async with asyncio.timeout(cfg.timeout):
                        chunk = await reader.read(READ_CHUNK)
                except TimeoutError:
                    outputs = decoder.idle()
                else:
                    if not chunk:
                        raise ConnectionError("serial port closed")
                    ctx.health.count("bytes", len(chunk))
                    outputs = decoder.feed(chunk)
                ts, mono = ctx.clock.now()
                for output in outputs:
                    await self._handle(ctx, cfg, output, rejects, ts, mono)
                ctx.health.ok()
        finally:
            await close_serial(writer)

    async def _handle(
        self,
        ctx: DriverContext,
        cfg: PosSerialConfig,
        output: Output,
        rejects: _RejectLog,
        ts: float,
        mono: float,
    ) -> None:
        if isinstance(output, Reject):
            rejects.add(output)
        elif isinstance(output, SaleLine):
            await self._sale(ctx, cfg, output, output.txn or _next_txn(ctx), ts, mono)
        elif isinstance(output, Receipt):
            ctx.health.count("receipts")
            if output.total_mismatch:
                ctx.health.count("total_mismatches")
            txn = output.txn or _next_txn(ctx)
            for line in output.lines:
                await self._sale(ctx, cfg, line, txn, ts, mono)
        elif isinstance(output, DisplayItem):
            # A display shows no transaction number (§4.3): number them ourselves, from the
            # last one kept in the device state, moving on at each total screen.
            txn = f"{ctx.device_id}-{int(ctx.state.get('txn', 0)) + 1}"
            await ctx.emit(
                Sale(
                    ctx.device_id,
                    txn,
                    None,
                    output.qty,
                    output.price,
                    output.amount,
                    cfg.currency,
                    ts,
                    mono,
                    text=output.name,
                )
            )
            ctx.health.count("sales")
        elif isinstance(output, DisplayTotal):
            ctx.health.count("display_totals")
            _next_txn(ctx)

    @staticmethod
    async def _sale(
        ctx: DriverContext,
        cfg: PosSerialConfig,
        line: SaleLine,
        txn: str,
        ts: float,
        mono: float,
    ) -> None:
        await ctx.emit(
            Sale(
                ctx.device_id,
                txn,
                line.sku,
                line.qty,
                line.price,
                line.amount,
                cfg.currency,
                ts,
                mono,
                text=line.name,
                total_mismatch=line.total_mismatch,
            )
        )
        ctx.health.count("sales")


def _next_txn(ctx: DriverContext) -> str:
    """A transaction number of our own, for streams that print none (kept across restarts)."""
    number = int(ctx.state.get("txn", 0)) + 1
    ctx.state["txn"] = number
    return f"{ctx.device_id}-{number}"
