"""The Modbus driver: polls a register map through the device's shared link.

Every request goes through `ctx.link(...)`: one transaction at a time per bus or TCP
endpoint, so five meters on one RS-485 line never talk over each other and a dead one
holds the line for at most its own timeout per request. A poll reads the coalesced
blocks of the register map (`coalesce.plan`); when a request times out the rest of that
poll is abandoned (a dead unit must not cost one timeout per block).
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

from drivers.modbus.coalesce import ReadBlock, extract_wire
from drivers.modbus.config import ModbusConfig
from drivers.modbus.protocol import (
    CrcError,
    FrameError,
    MbapReceiver,
    ModbusExceptionError,
    RtuReceiver,
    mbap_frame,
    parse_reply,
    read_pdu,
    reply_data,
    rtu_frame,
    write_coil_pdu,
    write_registers_pdu,
)
from drivers.modbus.registers import RegisterType
from gateway import Driver, DriverContext, Quality, Reading
from gateway.links import Link, LinkDownError, Priority, ReplyTimeoutError
from gateway.polling import PollClock, poll_forever

if TYPE_CHECKING:
    from drivers.modbus.registers import Value


class _Abandon(Exception):  # noqa: N818 - control flow, not an error for users
    """Stop this poll: the unit or the link is not answering."""


class Modbus(Driver):
    """Modbus RTU / TCP / RTU-over-TCP device with a register map."""

    name = "modbus"
    summary = "Modbus RTU/TCP meters and devices: register maps as data, shared-bus scheduler"
    Config = ModbusConfig
    default_window = 900.0  # energy is billed per 15 minutes (issue 4, "Aggregates")

    def __init__(self, config: ModbusConfig) -> None:
        super().__init__(config)
        self.cfg = config
        self.unit = config.resolved_unit()
        self.blocks = config.read_plan()
        self.specs = {spec.name: spec for spec in config.register_map()}
        self._transaction = random.randrange(1, 0xFFFF)
        self._link: Link | None = None
        self._ctx: DriverContext | None = None
        self._rtu = True

    async def run(self, ctx: DriverContext) -> None:
        """Poll the register map on the configured cadence until cancelled."""
        cfg = self.cfg
        link = self._link = ctx.link(cfg.link or str(cfg.url))
        self._ctx = ctx
        self._rtu = cfg.framing == "rtu" or (cfg.framing == "auto" and link.config.is_serial)
        clock = PollClock(
            cfg.interval, cfg.offset, cfg.jitter, dead_after=cfg.dead_after, dead_max=cfg.dead_max
        )
        await poll_forever(ctx, clock, lambda: self._poll(ctx, clock.dead))

    async def _poll(self, ctx: DriverContext, dead: bool) -> str | None:
        failure: str | None = None
        readings: list[Reading] = []  # the whole poll's, handed over as one event
        for block in self.blocks:
            try:
                data = await self._read(ctx, block, retries=0 if dead else self.cfg.retries)
            except ModbusExceptionError as exc:
                ctx.health.count("exceptions")
                failure = f"{self._where(block)}: {exc}"
                continue  # the other blocks may still read fine
            except _Abandon as exc:
                failure = str(exc)
                break  # what the earlier blocks read is still emitted
            ts, mono = ctx.clock.now()
            for name, value in extract_wire(block, data).items():
                spec = self.specs[name]
                if value is None:  # a NaN or infinite float: no measurement
                    readings.append(
                        Reading(ctx.device_id, name, math.nan, spec.unit, ts, mono, Quality.BAD)
                    )
                elif not isinstance(value, str):  # text (a model name) is not a reading
                    readings.append(
                        Reading(
                            ctx.device_id,
                            name,
                            float(value),
                            spec.unit,
                            ts,
                            mono,
                            Quality.GOOD,
                            spec.counter,
                            spec.wrap,
                        )
                    )
        await ctx.emit_readings(readings)
        return failure

    async def _read(self, ctx: DriverContext, block: ReadBlock, retries: int) -> bytes:
        pdu = read_pdu(block.function_code, block.address, block.count)
        for attempt in range(retries + 1):
            try:
                reply = await self._exchange(pdu, Priority.POLL)
                return reply_data(block.function_code, block.count, reply)
            except ReplyTimeoutError as exc:
                ctx.health.count("short_frames" if exc.received else "timeouts")
                reason = f"{self._where(block)}: {exc}"
            except CrcError as exc:
                ctx.health.count("crc_errors")
                reason = f"{self._where(block)}: {exc}"
            except FrameError as exc:
                ctx.health.count("bad_frames")
                reason = f"{self._where(block)}: {exc}"
            except LinkDownError as exc:
                ctx.health.count("link_down")
                raise _Abandon(str(exc)) from None
            if attempt < retries:
                ctx.health.count("retries")
        raise _Abandon(reason)

    async def _exchange(self, pdu: bytes, priority: Priority) -> bytes:
        assert self._link is not None
        cfg = self.cfg
        receiver: RtuReceiver | MbapReceiver
        if self._rtu:
            request, receiver = rtu_frame(self.unit, pdu), RtuReceiver(self.unit, pdu[0])
        else:
            self._transaction = self._transaction % 0xFFFF + 1
            request = mbap_frame(self._transaction, self.unit, pdu)
            receiver = MbapReceiver(self._transaction, self.unit)
        return await self._link.exchange(
            request, receiver, timeout=cfg.timeout, priority=priority, pause=cfg.pause
        )

    def _where(self, block: ReadBlock) -> str:
        return f"unit {self.unit} {block.type.value} {block.address}+{block.count}"

    async def write(self, name: str, value: Value) -> dict[str, Any]:
        """Write one value of the register map (holding register or coil), ahead of polls."""
        spec = self.specs.get(name)
        if spec is None or spec.type not in (RegisterType.HOLDING, RegisterType.COIL):
            raise ValueError(f"{name!r} is not a holding register or coil of this device")
        if self._link is None:
            raise RuntimeError("the device is not running")
        if spec.type is RegisterType.COIL:
            pdu = write_coil_pdu(spec.address, bool(value))
        else:
            pdu = write_registers_pdu(spec.address, spec.encode(value))
        reply = await self._exchange(pdu, Priority.WRITE)
        parse_reply(pdu[0], 0, reply)
        if self._ctx is not None:
            self._ctx.health.count("writes")
        return {"register": name, "value": value}
